"""The mirror's pre-receive hook: check the push in quarantine, forward it upstream
only if it passes, and record one audit line either way.

Runs as `python -m bot_bottle.sidecars.git_gate.hook --config F --remote NAME
[--audit-log F]`, spawned by `git receive-pack` in the gate process's environment
(so it holds the upstream credentials; the bottle never does). What it prints on
stderr reaches the agent's `git push` as `remote:` lines. Any error is a rejection.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot_bottle.policy.commit_scan import ALLOWLIST_FILE
from bot_bottle.policy.object_scan import redact
from bot_bottle.policy.refs import RefUpdate
from bot_bottle.policy.rules import hint_for
from bot_bottle.sidecars.git_gate.audit import audit_problem, write_push_record
from bot_bottle.sidecars.git_gate.config import load_config
from bot_bottle.sidecars.git_gate.git import Git
from bot_bottle.sidecars.git_gate.push_check import PushVerdict, check_push, load_detector
from bot_bottle.sidecars.git_gate.upstream import forward_env

MAX_LISTED = 50


def say(msg: str = "") -> None:
    print(f"git-gate: {msg}" if msg else "git-gate:", file=sys.stderr, flush=True)


def refspec(u: RefUpdate) -> list[str]:
    """Push exactly this update, and only if upstream still has `old` there
    (a lease: a push racing another writer upstream fails instead of clobbering)."""
    lease = f"--force-with-lease={u.ref}:{'' if u.created else u.old}"
    return [lease, f":{u.ref}" if u.deleted else f"+{u.new}:{u.ref}"]


def forward(git: Git, url: str, updates: Sequence[RefUpdate]) -> bool:
    args = ["push", "--no-verify"]
    if len(updates) > 1:
        args.append("--atomic")
    specs: list[str] = []
    for u in updates:
        lease, spec = refspec(u)
        args.append(lease)
        specs.append(spec)
    p = git.run(*args, url, *specs, check=False, timeout=600)
    for line in (p.stdout + p.stderr).decode(errors="replace").splitlines():
        if line.strip():
            say(f"upstream: {line}")
    return p.returncode == 0


def _unreadable(text: str) -> str:
    """The redaction when no detector could be loaded: show nothing of a name."""
    return "[unchecked]"


def report(verdict: PushVerdict, remote: str, clean: Callable[[str], str] = str) -> None:
    say(
        f"checked {len(verdict.commits)} new commit(s), {verdict.objects} new object(s) in all,"
        f" on {len(verdict.decisions)} ref(s)"
    )
    for note in verdict.notes:
        say(f"note: {note}")
    if verdict.allow:
        return
    say(f"REJECTED: push to {remote!r} not forwarded")
    # Decision reasons name the ref, which may be a secret; findings come redacted.
    reasons = [clean(f"{d.rule}: {d.reason}") for _, d in verdict.decisions if not d.allow]
    reasons += [f"secret: {f.describe()}" for f in verdict.findings]
    for r in reasons[:MAX_LISTED]:
        say(f"  {r}")
    if len(reasons) > MAX_LISTED:
        say(f"  ... and {len(reasons) - MAX_LISTED} more")
    for _, d in verdict.decisions:
        if not d.allow and d.hint:
            say(f"  hint: {clean(d.hint)}")
    if verdict.findings:
        say("  a secret stays in the commit that added it even if a later commit removes it:")
        say("  rewrite those commits (git rebase -i / git commit --amend), or rename the ref,")
        say("  file, tag or identity that carries it, then push again;")
        fp = verdict.findings[0].fingerprint
        say(f"  a false positive is allowed by a line 'fingerprint:{fp}' in {ALLOWLIST_FILE}")
        say("  on upstream's default branch (reviewed like code; this push cannot add it)")


def record(
    verdict: PushVerdict | None,
    updates: Sequence[RefUpdate],
    result: str,
    clean: Callable[[str], str] = str,
) -> dict[str, Any]:
    """The audit record; `clean` redacts secrets from ref names and reasons (a ref
    name can be one), so the audit log never holds one."""
    return {
        "kind": "git-push",
        "decision": "allow" if result == "accepted" else "deny",
        "verdict": result,
        "refs": [
            {
                "ref": clean(u.ref),
                "old": u.old,
                "new": u.new,
                **({"rule": d.rule, "reason": clean(d.reason)} if not d.allow else {}),
            }
            for u, d in (verdict.decisions if verdict else ())
        ]
        or [{"ref": clean(u.ref), "old": u.old, "new": u.new} for u in updates],
        "commits": list(verdict.commits) if verdict else [],
        "findings": [
            {
                "commit": f.commit,
                "path": f.path,
                "line": f.line,
                "detector": f.detector,
                "fingerprint": f.fingerprint,
                "object": f.object,
                "field": f.field,
                "ref": f.ref,
            }
            for f in (verdict.findings if verdict else ())
        ],
    }


def run(config: Path, remote_name: str, audit_log: Path | None, stdin: str) -> int:
    updates: list[RefUpdate] = []
    verdict: PushVerdict | None = None
    result = "error"
    clean: Callable[[str], str] = _unreadable
    try:
        detector = load_detector()
        clean = functools.partial(redact, detector)
        updates = [RefUpdate.parse(line) for line in stdin.splitlines() if line.strip()]
        remote = load_config(config).remote(remote_name)
        if remote is None:
            raise LookupError(f"remote {remote_name!r} is not in the gate config")
        git = Git(Path("."), dict(os.environ))
        verdict = check_push(git, updates, remote.rules, detector)
        report(verdict, remote.name, clean)
        why = audit_problem(audit_log) if audit_log is not None and verdict.allow else ""
        if not verdict.allow:
            result = "rejected"
        elif why:
            result = "rejected"
            say(f"REJECTED: {why}; {hint_for('audit')}")
        elif forward(Git(Path("."), forward_env(os.environ)), remote.url, updates):
            result = "accepted"
        else:
            result = "upstream-rejected"
            say("REJECTED by upstream (its answer is above); the gate's mirror is unchanged")
    except Exception as e:  # any failure inside a policy decision is a deny
        say(f"REJECTED: the gate could not check this push ({type(e).__name__}: {e})")
    finally:
        if audit_log is not None:
            try:
                write_push_record(
                    audit_log, {"remote": remote_name, **record(verdict, updates, result, clean)}
                )
            except Exception as e:  # the push is decided (and maybe upstream): say so
                say(f"warning: audit log not writable ({e})")
    return 0 if result == "accepted" else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="git-gate-hook")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--remote", required=True)
    ap.add_argument("--audit-log", type=Path)
    a = ap.parse_args(argv)
    return run(a.config, a.remote, a.audit_log, sys.stdin.read())


if __name__ == "__main__":
    sys.exit(main())
