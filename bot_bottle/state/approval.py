"""The operator's approvals of manifests, as direnv's `allow` records `.envrc`s.

An approval is the digest of a plan's lines (`plan.review`) plus the content of every
host file the launch reads: the manifest, the prompt file, the upstream CA, skills, a
custom Dockerfile and its directory. It lives in bot-bottle's own state root (never in
a workspace), one JSON file per manifest, keyed by the manifest's resolved absolute
path, with one entry per agent. It holds paths, names and digests; no secret value.

Hash what is used, not a second read of it: the manifest and the prompt are hashed
from the bytes the plan was built from (`plan.manifest_digest`, `plan.prompt_digest`),
the upstream CA is read once, hashed, and handed to egress as that same PEM text, and
skills are provisioned from a copy of the bytes hashed (`state.snapshot`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot_bottle.errors import BotBottleError, DamagedState, ManifestError
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.review import Change, Line, describe, diff, digest, sha256
from bot_bottle.state.file_lock import file_lock
from bot_bottle.state.snapshot import Tree, read_tree, write_snapshot

Status = Literal["approved", "changed", "unapproved"]
Kind = Literal["bytes", "text", "tree"]


class NotApproved(BotBottleError):
    """An unattended launch of a configuration the operator has not approved."""


@dataclass(frozen=True)
class Input:
    """A host file or directory the launch reads, with the digest of what it read."""

    path: str
    kind: Kind
    digest: str


@dataclass(frozen=True)
class Verdict:
    """How the plan about to launch compares with what the operator approved. `plan`
    is the one to launch: its upstream CA is the PEM text that was hashed."""

    status: Status
    lines: tuple[Line, ...]
    changes: tuple[Change, ...]
    inputs: tuple[Input, ...]
    plan: BottlePlan

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def tree_digest(root: str) -> str:
    return read_tree(root).digest


def _current(inp: Input) -> str:
    """`inp`'s digest as the host holds it now ("" if unreadable)."""
    try:
        if inp.kind == "tree":
            return tree_digest(inp.path)
        if inp.kind == "text":
            return sha256(Path(inp.path).read_text().encode())
        return sha256(Path(inp.path).read_bytes())
    except (OSError, UnicodeDecodeError):
        return ""


def read_inputs(
    plan: BottlePlan, snapshots: Path | None = None
) -> tuple[tuple[Input, ...], dict[str, dict[str, str]], BottlePlan]:
    """The launch's host inputs with their digests, the entries of the directories
    among them, and the plan to launch: its upstream CA pinned to the exact bytes
    hashed (egress takes PEM text as well as a path) and, given `snapshots` (the state
    root), its skills replaced by copies of exactly the bytes hashed."""
    inputs = [Input(plan.manifest_path, "bytes", plan.manifest_digest)]
    if plan.prompt_file:
        inputs.append(Input(plan.prompt_file, "text", plan.prompt_digest))
    ca = plan.egress.upstream_ca
    if ca and "-----BEGIN" not in ca:
        try:
            data = Path(ca).read_bytes()
            pem = data.decode("ascii")
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"cannot read the upstream CA bundle {ca}: {e}") from None
        from bot_bottle.plan.upstream_ca import ca_pem_error  # cryptography: only here

        problem = ca_pem_error(data, ca)  # the bytes egress will trust, not a re-read
        if problem is not None:
            raise ManifestError(problem)
        inputs.append(Input(ca, "bytes", sha256(data)))
        plan = replace(plan, egress=replace(plan.egress, upstream_ca=pem))
    trees: dict[str, dict[str, str]] = {}
    pinned_skills = []
    for d in plan.skills:
        tree = _read(d, keep_bytes=snapshots is not None)
        trees[d] = tree.entries
        inputs.append(Input(d, "tree", tree.digest))
        if snapshots is not None:
            pinned_skills.append(write_snapshot(tree, snapshots, os.path.basename(d)))
    if snapshots is not None:
        plan = replace(plan, skills=tuple(pinned_skills))
    if plan.dockerfile:
        # Its directory is the build context, Dockerfile included. Hashed here and read
        # again by the image build (see docs/security.md).
        ctx = os.path.dirname(plan.dockerfile)
        tree = _read(ctx)
        trees[ctx] = tree.entries
        inputs.append(Input(ctx, "tree", tree.digest))
    return tuple(inputs), trees, plan


def _read(d: str, keep_bytes: bool = False) -> Tree:
    try:
        return read_tree(d, keep_bytes)
    except OSError as e:
        raise ManifestError(f"cannot read {d}: {e.strerror}") from None


class ApprovalStore:
    """`<state root>/approvals/<hash of the manifest path>.json`, readable only by the
    user: the record of what the operator approved, per manifest and agent."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "approvals"

    def file(self, manifest_path: str) -> Path:
        return self.dir / (hashlib.sha256(manifest_path.encode()).hexdigest()[:32] + ".json")

    def _load(self, manifest_path: str, damaged_ok: bool = False) -> dict[str, Any]:
        """The record for `manifest_path` ({} when there is none). A file that cannot be
        read back raises `DamagedState`, unless `damaged_ok` (approving rewrites it)."""
        path = self.file(manifest_path)
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict) or raw.get("manifest") != manifest_path:
                raise ValueError("not the approval record of this manifest")
            if not isinstance(raw.get("agents", {}), dict):
                raise ValueError("its agents are not a JSON object")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            if damaged_ok:
                return {}
            raise DamagedState(str(path), str(e),
                               f"`bot-bottle trust -f {manifest_path}` approves the "
                               "configuration again, rewriting it") from None  # fmt: skip
        return raw

    def entry(self, manifest_path: str, agent: str) -> dict[str, Any] | None:
        agents = self._load(manifest_path).get("agents")
        e = agents.get(agent) if isinstance(agents, dict) else None
        return e if isinstance(e, dict) else None

    def approved_lines(self, manifest_path: str, agent: str) -> tuple[Line, ...] | None:
        e = self.entry(manifest_path, agent)
        if e is None or not isinstance(e.get("lines"), list):
            return None
        try:
            return tuple(Line(str(k), str(v), str(loud)) for k, v, loud in e["lines"])
        except (TypeError, ValueError):
            return None

    def approve(self, verdict: Verdict) -> None:
        """Record `verdict`'s lines and inputs as approved for its manifest and agent."""
        plan = verdict.plan
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.file(plan.manifest_path)
        with file_lock(path.with_suffix(".lock"), timeout=30):
            record = self._load(plan.manifest_path, damaged_ok=True)
            record = record or {"manifest": plan.manifest_path}
            agents = record.get("agents")
            agents = dict(agents) if isinstance(agents, dict) else {}
            agents[plan.agent] = {
                "digest": digest(verdict.lines),
                "approved": datetime.now(UTC).isoformat(timespec="seconds"),
                "lines": [[ln.key, ln.value, ln.loud] for ln in verdict.lines],
                "inputs": [[i.path, i.kind, i.digest] for i in verdict.inputs],
            }
            record["agents"] = agents
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with open(fd, "w") as f:
                f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, path)

    def status(self, manifest_path: str, agent: str) -> Status:
        """A cheap answer for `ls`: are the files this agent's approval read unchanged?
        (`run` and `resume` compare the whole resolved plan.)"""
        e = self.entry(os.path.realpath(manifest_path), agent)
        if e is None:
            return "unapproved"
        try:
            inputs = [Input(str(p), k, str(d)) for p, k, d in e.get("inputs", [])]
        except (TypeError, ValueError):
            return "changed"
        return "approved" if all(_current(i) == i.digest for i in inputs) else "changed"


def _refuse_state_in_workspace(plan: BottlePlan, root: Path) -> None:
    """A workspace holding bot-bottle's state root would let the agent write its own
    approvals (and the plan cache the launcher unpickles): never mount one."""
    ws = plan.workspace.path
    if not ws:
        return
    state = os.path.realpath(root)
    if any(a == b or a.startswith(b.rstrip("/") + "/") for a, b in ((state, ws), (ws, state))):
        raise ManifestError(
            f"workspace {ws} overlaps bot-bottle's state directory {state}",
            f"bottles.{plan.bottle}.workspace.path",
            fix="point the workspace at a project directory, or set BOT_BOTTLE_HOME elsewhere",
        )


def evaluate(
    store: ApprovalStore, plan: BottlePlan, extra_args: tuple[str, ...] = (), pin: bool = False
) -> Verdict:
    """Compare `plan` (with the host files it reads) against the recorded approval.
    `pin` (for a launch) makes `Verdict.plan` use copies of the bytes hashed."""
    _refuse_state_in_workspace(plan, store.dir.parent)
    inputs, trees, pinned = read_inputs(plan, store.dir.parent if pin else None)
    lines = describe(plan, extra_args, {i.path: i.digest for i in inputs}, trees)
    old = store.approved_lines(plan.manifest_path, plan.agent)
    if old is None:
        return Verdict("unapproved", lines, diff((), lines), inputs, pinned)
    changes = diff(old, lines)
    # The digest decides, over every line in order; the diff is for reading.
    status: Status = "approved" if digest(old) == digest(lines) else "changed"
    return Verdict(status, lines, changes, inputs, pinned)
