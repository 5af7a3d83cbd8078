"""Checking one push inside the mirror's pre-receive hook: ref rules for every
update, then the secret scan over the incoming commits only.

"Incoming" is `<new tips> --not --all`: commits reachable from what is pushed but
from no ref the mirror (i.e. upstream) already has, so history is never rescanned
and the cost follows the push, not the repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from bot_bottle.policy.commit_scan import (
    ALLOWLIST_FILE,
    LOG_FORMAT_ARGS,
    MESSAGE_PATH,
    AddedLine,
    Allowlist,
    Detector,
    PushFinding,
    added_lines,
    scan_added_lines,
)
from bot_bottle.policy.decision import Decision
from bot_bottle.policy.refs import RefRules, RefUpdate, check_ref_update
from bot_bottle.sidecars.git_gate.git import Git

CANARIES_ENV = "BOT_BOTTLE_CANARIES"  # JSON list of the decoy values planted in the bottle
PROTECT_PREFIX = "EGRESS_PROTECT_"


@dataclass(frozen=True)
class PushVerdict:
    """Everything decided about one push; `allow` only if every part allows."""

    decisions: tuple[tuple[RefUpdate, Decision], ...]
    commits: tuple[str, ...]
    findings: tuple[PushFinding, ...]
    notes: tuple[str, ...] = ()

    @property
    def allow(self) -> bool:
        return not self.findings and all(d.allow for _, d in self.decisions)

    def reasons(self) -> list[str]:
        out = [f"{d.rule}: {d.reason}" for _, d in self.decisions if not d.allow]
        out += [f"secret: {f.describe()}" for f in self.findings]
        return out


def load_detector() -> Detector:
    """The shared DLP scanner, which also knows this bottle's canaries and protected
    host values, given in the environment as egress gets them. Raises if it cannot be
    loaded: without a detector no push may pass."""
    from bot_bottle.policy.dlp import Scanner

    exact = {f"protected-env:{k}": v for k, v in os.environ.items() if k.startswith(PROTECT_PREFIX)}
    canaries = json.loads(os.environ.get(CANARIES_ENV, "[]"))
    return Scanner(exact=exact, canaries=canaries)


def is_fast_forward(git: Git, update: RefUpdate) -> bool:
    """Whether `new` descends from `old`; a failure to tell counts as a force."""
    return git.ok("merge-base", "--is-ancestor", update.old, update.new)


def incoming_commits(git: Git, tips: Sequence[str]) -> tuple[str, ...]:
    if not tips:
        return ()
    out = git.run("rev-list", "--topo-order", *tips, "--not", "--all").stdout.decode()
    return tuple(out.split())


def _tag_message_lines(git: Git, tips: Sequence[str]) -> list[AddedLine]:
    """Annotated tag objects carry a message of their own that leaves with the push."""
    lines: list[AddedLine] = []
    for oid in tips:
        if git.out("cat-file", "-t", oid) != "tag":
            continue
        body = git.run("cat-file", "tag", oid).stdout.split(b"\n\n", 1)[-1]
        for n, text in enumerate(body.splitlines(), 1):
            lines.append(AddedLine(oid, MESSAGE_PATH, n, text))
    return lines


def read_allowlist(git: Git) -> Allowlist:
    """The allowlist as upstream's default branch has it: reviewed, and out of reach
    of the push being checked (a push cannot allow its own secret)."""
    p = git.run("cat-file", "blob", f"HEAD:{ALLOWLIST_FILE}", check=False)
    if p.returncode != 0:
        return Allowlist()
    return Allowlist.parse(p.stdout.decode("utf-8", "replace"))


def scan_incoming(
    git: Git, tips: Sequence[str], detector: Detector, allowlist: Allowlist
) -> list[PushFinding]:
    """One `git log -p` over the incoming commits, streamed through the scanner."""
    if not tips:
        return []
    proc = git.stream("log", *LOG_FORMAT_ARGS, *tips, "--not", "--all")
    assert proc.stdout is not None
    try:
        findings = scan_added_lines(added_lines(proc.stdout), detector, allowlist)
    finally:
        proc.stdout.close()
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"git log over the incoming commits exited {code}")
    findings += scan_added_lines(_tag_message_lines(git, tips), detector, allowlist)
    return findings


def check_push(
    git: Git, updates: Sequence[RefUpdate], rules: RefRules, detector: Detector
) -> PushVerdict:
    decisions = []
    for u in updates:
        needs_ff = rules.is_protected(u.ref) and not (u.created or u.deleted)
        ff = is_fast_forward(git, u) if needs_ff else True
        decisions.append((u, check_ref_update(u, rules, fast_forward=ff)))
    tips = sorted({u.new for u in updates if not u.deleted})
    allowlist = read_allowlist(git)
    commits = incoming_commits(git, tips)
    # Tips with no new commits still get scanned: an annotated tag's message is new.
    findings = scan_incoming(git, tips, detector, allowlist)
    return PushVerdict(tuple(decisions), commits, tuple(findings), allowlist.warnings)
