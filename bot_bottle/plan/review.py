"""What the operator approves: a plan's effective configuration as readable lines, the
fields that reach outside the workspace marked loud, and the difference between two.

The manifest and the files a launch reads may sit in the agent's workspace, so the
agent can rewrite them between runs. These lines are what `run` shows when anything
changed since the operator last approved, and their digest is what the approval
records. Pure: digests of host files come in as values (`state.approval` reads them).
No credential value appears here: routes and remotes name the host variable a token
comes from, never its value; hidden env and DLP patterns appear only as digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot_bottle.plan.model import BottlePlan

LONG_ARG = 80  # argv elements longer than this (a whole prompt) show as a digest
TREE_DETAIL = 64  # directories with at most this many entries are shown file by file


@dataclass(frozen=True)
class Line:
    """One fact of the configuration. `loud` says why the operator should look twice
    (it reaches outside the workspace, or switches a protection off); "" if not."""

    key: str
    value: str
    loud: str = ""


@dataclass(frozen=True)
class Change:
    """A line added (`old` None), removed (`new` None) or changed since approval."""

    key: str
    old: Line | None
    new: Line | None


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _short(digest: str) -> str:
    # The whole digest: a truncated one would let a patient agent search for a
    # different file that shows the same line.
    return digest.removeprefix("sha256:")


def _inside(path: str, directory: str) -> bool:
    return bool(path) and bool(directory) and (path == directory or path.startswith(
        directory.rstrip("/") + "/"))  # fmt: skip


def manifest_dir(plan: BottlePlan) -> str:
    return os.path.dirname(plan.manifest_path)


def describe(
    plan: BottlePlan,
    extra_args: Sequence[str],
    digests: Mapping[str, str],
    trees: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Line, ...]:
    """The lines of `plan`. `extra_args` (the operator's own words after `--`) are left
    out of argv: they are typed at each launch, not read from a file. `digests` maps
    each host file or directory the launch reads to the digest of its content; `trees`
    maps a directory to its entries (relative path -> what it holds), so a small one
    shows which file changed."""
    trees = trees or {}
    home = manifest_dir(plan)
    out = [
        Line("manifest", f"{plan.manifest_path} ({_short(plan.manifest_digest)})"),
        Line("agent", f"{plan.agent} in bottle {plan.bottle} ({plan.provider})"),
        Line("backend", plan.backend),
    ]
    argv = plan.argv[: len(plan.argv) - len(extra_args)] if extra_args else plan.argv
    out.append(Line("argv", shlex.join(_shown(a) for a in argv)))
    if plan.prompt_file:
        loud = "" if _inside(plan.prompt_file, home) else (
            "outside the manifest's directory: a host file becomes the agent's prompt")  # fmt: skip
        out.append(Line("prompt_file", plan.prompt_file, loud))
    out.append(Line("prompt", _short(plan.prompt_digest) if plan.prompt_digest else "-"))
    ws = plan.workspace
    ws_loud = ""
    if ws.path and not _inside(ws.path, home):
        ws_loud = (
            f"outside the manifest's directory: the agent gets this host directory ({ws.mode})"
        )
    out.append(Line("workspace", f"{ws.mode} {ws.path}".strip(), ws_loud))
    if plan.image:
        out.append(Line("image", plan.image))
    if plan.dockerfile:
        out.append(Line("dockerfile", plan.dockerfile))
        out += _tree_lines("build context", os.path.dirname(plan.dockerfile), digests, trees)
    res = plan.resources
    if res.cpus is not None or res.memory is not None:
        out.append(Line("resources", f"cpus={res.cpus or '-'} memory={res.memory or '-'}"))
    out += _egress_lines(plan, digests)
    out += _env_lines(plan)
    out += _git_lines(plan)
    for path in plan.skills:
        out += _tree_lines(f"skill {os.path.basename(path)}", path, digests, trees)
    for f in plan.files:
        merged = ", merged into the agent's own" if f.merge_json else ""
        out.append(Line(f"file {f.path}", f"mode {f.mode:o}{merged} ({_short(sha256(f.content))})"))
    for k, v in plan.provider_options.lines():
        out.append(Line(f"provider option {k}", v))
    out.append(Line("supervise", "on" if plan.supervise else "off"))
    return tuple(out)


def _tree_lines(
    key: str, root: str, digests: Mapping[str, str], trees: Mapping[str, Mapping[str, str]]
) -> list[Line]:
    out = [Line(key, f"{root} ({_short(digests.get(root, '?'))})")]
    entries = trees.get(root, {})
    if len(entries) <= TREE_DETAIL:
        out += [Line(f"{key} {rel}", what) for rel, what in sorted(entries.items())]
    return out


def _shown(arg: str) -> str:
    return arg if len(arg) <= LONG_ARG else f"<{len(arg)} chars {_short(sha256(arg.encode()))}>"


def _egress_lines(plan: BottlePlan, digests: Mapping[str, str]) -> list[Line]:
    slot_ref = {t.slot: t.ref for t in plan.token_slots}
    out: list[Line] = []
    seen: dict[str, int] = {}
    for r in plan.egress.routes:
        seen[r.host] = seen.get(r.host, 0) + 1
        key = f"route {r.host}" + (f" #{seen[r.host]}" if seen[r.host] > 1 else "")
        if r.tls_passthrough:
            value = "passthrough (no inspection, DLP or injection)"
        else:
            value = f"paths {' '.join(r.paths) or '*'} methods {' '.join(r.methods) or '*'}"
            if r.auth:
                value += f"; credential {r.auth.scheme} from host ${slot_ref.get(r.auth.slot, '?')}"
        out.append(Line(key, f"{value} [{r.source}]"))
    for name, ip in sorted(plan.egress.hosts.items()):
        out.append(Line(f"hosts {name}", ip))
    if plan.egress.ssrf_ip_allowlist:
        out.append(Line("ssrf_ip_allowlist", " ".join(plan.egress.ssrf_ip_allowlist)))
    ca = plan.egress.upstream_ca
    if ca:
        out.append(Line("upstream_ca", f"{ca} ({_short(digests.get(ca, '?'))})"))
    dlp = plan.egress.dlp
    if dlp.enabled:
        pats = sha256(json.dumps(list(dlp.patterns)).encode())
        value = f"on; {len(dlp.patterns)} extra patterns ({_short(pats)})"
        refs = [t.ref for t in plan.protect_slots]
        if refs:
            value += "; protecting $" + " $".join(refs)
        out.append(Line("dlp", value))
    else:
        out.append(Line("dlp", "OFF", "dlp.enabled: false: nothing scans what the agent sends"))
    return out


def _env_lines(plan: BottlePlan) -> list[Line]:
    out = []
    for e in plan.env:
        if e.from_host is not None:
            loud = f"copies the host's ${e.from_host} into the bottle"
            out.append(Line(f"env {e.name}", f"from host ${e.from_host}", loud))
        elif e.name in plan.hidden_env:
            out.append(Line(f"env {e.name}", f"(hidden) [{e.source}]"))
        else:
            out.append(Line(f"env {e.name}", f"= {e.value} [{e.source}]"))
    return out


def _git_lines(plan: BottlePlan) -> list[Line]:
    out = []
    ident = plan.git_identity
    who = [f"{k}={v.value}" for k, v in (("name", ident.name), ("email", ident.email)) if v]
    out.append(Line("git identity", " ".join(who)))
    for r in plan.git_remotes:
        value = f"{r.url}; protected {' '.join(r.protected_refs) or '-'}"
        value += f"; allowed {' '.join(r.allowed_refs) or '*'}"
        if r.token_ref:
            value += f"; credential from host ${r.token_ref}"
        local = r.url.startswith(("/", ".", "file:"))
        loud = "a host path: the git gate writes pushes into this host directory" if local else ""
        out.append(Line(f"git remote {r.name}", value, loud))
    return out


def loud_lines(lines: Sequence[Line]) -> list[Line]:
    return [ln for ln in lines if ln.loud]


def digest(lines: Sequence[Line]) -> str:
    """What an approval records and a launch compares: any change in any line changes it."""
    return sha256(json.dumps([[ln.key, ln.value] for ln in lines]).encode())


def diff(old: Sequence[Line], new: Sequence[Line]) -> tuple[Change, ...]:
    """Changed and added lines in `new`'s order, then removed ones in `old`'s."""
    before = {ln.key: ln for ln in old}
    after = {ln.key: ln for ln in new}
    out = [Change(ln.key, before.get(ln.key), ln) for ln in new if before.get(ln.key) != ln]
    out += [Change(ln.key, ln, None) for ln in old if ln.key not in after]
    return tuple(out)


def render_changes(changes: Sequence[Change]) -> list[str]:
    """Plain text, one fact per line: `- key: old` / `+ key: new`, loud ones flagged."""
    out = []
    for c in changes:
        if c.old is not None:
            out.append(f"- {c.key}: {c.old.value}")
        if c.new is not None:
            flag = f"   <-- {c.new.loud}" if c.new.loud else ""
            out.append(f"+ {c.key}: {c.new.value}{flag}")
    return out


def protected_paths(plan: BottlePlan) -> tuple[str, ...]:
    """Host files and directories the launch read that lie inside a mounted workspace:
    the backend binds them read-only over themselves, so the agent cannot even stage a
    change. The workspace root itself is never one (the agent works there)."""
    ws = plan.workspace
    if ws.mode != "mount" or not ws.path:
        return ()
    # `sources` (prompt file, upstream CA, skills) keeps the paths even after the
    # approval pinned the CA's bytes into the plan.
    read = [plan.manifest_path, *plan.sources]
    if plan.dockerfile:
        read += [plan.dockerfile, os.path.dirname(plan.dockerfile)]
    out: list[str] = []
    for p in read:
        if p and p != ws.path and _inside(p, ws.path) and p not in out:
            out.append(p)
    return tuple(out)
