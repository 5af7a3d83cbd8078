"""Routes written into the manifest a bottle was started from, as an operator change.

`grant --persist` and `suggest --persist` come here. The manifest may sit in the agent's
workspace, where an agent could have rewritten it, so a route is persisted only into a
file whose approval is current for the bottle's agent: the operator approved exactly
these bytes (and everything else the launch reads). Writing is then the operator's own
change, so the approval moves to the new bytes, for every agent of the manifest whose
approval was current, once it is checked that nothing else in their configuration
differs. The file is replaced whole (a temporary file renamed over it, through one
handle on its directory, never a path followed twice), and only if it still holds the
bytes that were checked; a refusal leaves it untouched.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot_bottle.errors import BotBottleError, ManifestError
from bot_bottle.manifest.loader import MAX_BYTES, LoadedManifest, load_manifest
from bot_bottle.manifest.model import RouteSpec
from bot_bottle.manifest.route_edit import add_routes
from bot_bottle.plan.resolver import resolve
from bot_bottle.plan.review import diff
from bot_bottle.policy.supervise import Ask
from bot_bottle.state.approval import ApprovalStore, NotApproved, Verdict, evaluate
from bot_bottle.state.file_lock import file_lock
from bot_bottle.state.store import StateStore


@dataclass(frozen=True)
class Persisted:
    """What was written where, and whose approval now records it."""

    path: str
    bottle: str
    text: str  # the manifest as written (or as it was, when nothing changed)
    lines: tuple[int, ...]  # numbers (from 1) of the lines added or changed
    notes: tuple[str, ...]
    approved: tuple[str, ...]  # agents whose approval was moved to the new file
    left: tuple[str, ...]  # agents whose approval was not current, left as they were

    def report(self) -> str:
        """The operator's account of it: the file, each line written, the approvals."""
        if not self.lines:
            return "\n".join([f"{self.path} unchanged", *(f"  {n}" for n in self.notes)])
        new = self.text.splitlines()
        which = "line" if len(self.lines) == 1 else "lines"
        out = [f"wrote {self.path} (bottles.{self.bottle}.egress.routes), {which} "
               f"{_spans(self.lines)}:"]  # fmt: skip
        out += [f"  {n:>4} | {new[n - 1]}" for n in self.lines]
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"approved as the configuration of agent {', '.join(self.approved)}")
        if self.left:
            out.append(f"  not approved before, left so: agent {', '.join(self.left)} "
                       f"(`bot-bottle trust -f {self.path}` after review)")  # fmt: skip
        return "\n".join(out)


def route_of_ask(ask: Ask) -> RouteSpec:
    """The manifest route a granted ask stands for (https, like the live grant)."""
    return RouteSpec(
        host=ask.host,
        port=None if ask.port == 443 else ask.port,
        path_allowlist=[] if ask.path == "/" else [ask.path],
        methods=list(ask.methods),
    )


def persist_grant(store: StateStore, slug: str, ask: Ask, request_id: str, operator: str) -> str:
    """`grant --persist`: the granted route written for bottle `slug`; the report."""
    who = "".join(c for c in operator if c.isalnum() or c in "._-") or "?"
    why = f"granted {request_id} by {who} (bot-bottle grant --persist)"
    return persist_for_bottle(store, slug, [route_of_ask(ask)], why).report()


def persist_for_bottle(
    store: StateStore, slug: str, routes: Sequence[RouteSpec], why: str
) -> Persisted:
    """Write `routes` into the manifest bottle `slug` was started from, into its bottle,
    approved for its agent; `why` becomes the comment above them, with the date."""
    meta = store.load_any(slug)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return persist_routes(store.root, meta.manifest_path, meta.bottle, meta.agent, routes,
                          f"{why}, {when}", os.environ)  # fmt: skip


def persist_routes(
    root: Path,
    manifest_path: str,
    bottle: str,
    agent: str,
    routes: Sequence[RouteSpec],
    comment: str,
    env: Mapping[str, str],
) -> Persisted:
    real = os.path.realpath(manifest_path)
    directory, name = os.path.split(real)
    approvals = ApprovalStore(root)
    approvals.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # One persist at a time per manifest: two would each edit the same old bytes.
    with file_lock(approvals.file(real).with_suffix(".persist.lock"), timeout=30):
        try:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise ManifestError(f"cannot open {directory}: {e.strerror}") from None
        try:
            data, st = _read(dfd, name, real)
            loaded = load_manifest(Path(real), data)
            current, left = _current(approvals, loaded, agent, env)
            if loaded.manifest.agents[agent].bottle != bottle:  # re-pointed since the launch
                raise ManifestError(f"agent {agent} now runs in bottle "
                                    f"{loaded.manifest.agents[agent].bottle}, not {bottle}; "
                                    "nothing was written", fix="add the route by hand")  # fmt: skip
            edit = add_routes(data.decode("utf-8"), bottle, routes, comment)
            if edit.text.encode() == data:
                return Persisted(real, bottle, edit.text, (), edit.notes, (), ())
            new = load_manifest(Path(real), edit.text.encode())
            after = [_same_but_routes(v, evaluate(approvals, resolve(new, v.plan.agent, env)))
                     for v in current]  # fmt: skip
            _replace(dfd, name, real, data, edit.text.encode(), st)
        finally:
            os.close(dfd)
        for v in after:
            approvals.approve(v)
    names = tuple(v.plan.agent for v in after)
    return Persisted(real, bottle, edit.text, edit.lines, edit.notes, names, left)


def _current(
    approvals: ApprovalStore, loaded: LoadedManifest, agent: str, env: Mapping[str, str]
) -> tuple[list[Verdict], tuple[str, ...]]:
    """The verdicts of the agents whose approval is current, and the names of those with
    an approval that is not. Refuses unless `agent`'s is current."""
    if agent not in loaded.manifest.agents:
        raise ManifestError(f"{loaded.path} has no agent {agent!r} any more; nothing was "
                            "written", fix="add the route by hand")  # fmt: skip
    current, left = [], []
    for name in sorted(loaded.manifest.agents):
        if name != agent and approvals.entry(str(loaded.path), name) is None:
            continue
        try:
            v = evaluate(approvals, resolve(loaded, name, env))
        except ManifestError:
            if name == agent:
                raise
            left.append(name)
            continue
        if v.approved:
            current.append(v)
        elif name == agent:
            raise _refusal(v)
        else:
            left.append(name)
    return current, tuple(left)


def _refusal(v: Verdict) -> NotApproved:
    path, agent = v.plan.manifest_path, v.plan.agent
    if v.status == "unapproved":
        why = f"agent {agent} of {path} was never approved"
    else:
        keys = ", ".join(dict.fromkeys(c.key for c in v.changes))
        why = (f"{path} changed since it was approved for agent {agent} (changed: {keys}); "
               "the agent may have edited it")  # fmt: skip
    return NotApproved(
        f"{why}: nothing was persisted or granted, the file is as it was",
        f"review it (`bot-bottle plan {agent} -f {path}`); if every change is yours, "
        f"approve it (`bot-bottle trust -f {path}`) and persist again",
    )


def _same_but_routes(old: Verdict, new: Verdict) -> Verdict:
    """`new`, after checking it differs from the approved `old` only in the manifest's
    digest and routes: a prompt file, CA or skill changed meanwhile is not approved."""
    manifest = old.plan.manifest_path
    others = {(i.path, i.kind, i.digest) for i in old.inputs if i.path != manifest}
    keys = [c.key for c in diff(old.lines, new.lines)]
    stray = [k for k in keys if k != "manifest" and not k.startswith("route ")]
    if stray or others != {(i.path, i.kind, i.digest) for i in new.inputs if i.path != manifest}:
        raise NotApproved(
            f"the configuration of agent {old.plan.agent} changed in more than its routes "
            f"while persisting ({', '.join(stray) or 'a file it reads'}); nothing was written",
            f"review it (`bot-bottle plan {old.plan.agent} -f {manifest}`), then `bot-bottle "
            f"trust -f {manifest}`",
        )
    return new


def _read(dfd: int, name: str, path: str) -> tuple[bytes, os.stat_result]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as e:
        raise ManifestError(f"cannot read {path}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ManifestError(f"{path} is not a regular file; nothing was written")
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_BYTES + 1), st


def _replace(dfd: int, name: str, path: str, old: bytes, new: bytes, st: os.stat_result) -> None:
    """`new` renamed over `name`, only if it still holds `old`, with its mode and owner."""
    if _read(dfd, name, path)[0] != old:
        raise BotBottleError(f"{path} changed while the route was being persisted; nothing "
                             "was written", "look at it, then try again")  # fmt: skip
    tmp = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)  # fmt: skip
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(new)
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
                if os.geteuid() == 0:  # a root launcher leaves the user's file theirs
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(tmp, dir_fd=dfd)
            raise
        os.fsync(dfd)
    except OSError as e:
        raise ManifestError(f"cannot write {path}: {e.strerror}; nothing was written") from None


def _spans(lines: Sequence[int]) -> str:
    out: list[list[int]] = []
    for n in lines:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)
