"""Checking one push inside the mirror's pre-receive hook: ref rules for every
update, then the secret scan over every object the push adds and every ref name.

"Adds" is `rev-list --objects <new tips> --not --all`: every commit, tree, blob and
tag reachable from what is pushed (whatever points at it: a branch, a tag, a ref
straight at a blob or tree, an octopus merge) but from no ref the mirror (i.e.
upstream) already has. So history is never rescanned, the cost follows the push, and
nothing new reaches upstream unread. Runs with receive-pack's quarantine environment,
in which the pushed objects are visible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain

from bot_bottle.policy.commit_scan import (
    ALLOWLIST_FILE,
    CONTENT,
    Allowlist,
    Detector,
    PushFinding,
)
from bot_bottle.policy.decision import Decision
from bot_bottle.policy.object_scan import (
    GitObject,
    object_pieces,
    redact,
    ref_pieces,
    scan_pieces,
)
from bot_bottle.policy.refs import RefRules, RefUpdate, check_ref_update
from bot_bottle.sidecars.git_gate.git import Git

CANARIES_ENV = "BOT_BOTTLE_CANARIES"  # JSON list of the decoy values planted in the bottle
PROTECT_PREFIX = "EGRESS_PROTECT_"
MAX_OBJECT = 512 << 20
"""Each object is read whole to be scanned: a push with a bigger one (a decompression
bomb fits in a small pack) is refused rather than exhaust the gate's memory."""


@dataclass(frozen=True)
class PushVerdict:
    """Everything decided about one push; `allow` only if every part allows."""

    decisions: tuple[tuple[RefUpdate, Decision], ...]
    commits: tuple[str, ...]
    findings: tuple[PushFinding, ...]
    notes: tuple[str, ...] = ()
    objects: int = 0

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


def new_objects(git: Git, tips: Sequence[str]) -> list[tuple[str, str]]:
    """(oid, path) of every object reachable from `tips` and from no existing ref;
    `path` is the one rev-list reached a tree or blob by ("" for the rest)."""
    if not tips:
        return []
    # With the mirror's commit-graph, topo order walks by generation number and stops
    # at upstream's commits (see benchmarks/git_gate.py).
    out = git.run("rev-list", "--objects", "--topo-order", *tips, "--not", "--all").stdout
    listed: list[tuple[str, str]] = []
    for line in out.split(b"\n"):
        if line:
            oid, _, path = line.partition(b" ")
            listed.append((oid.decode("ascii"), path.decode("utf-8", "surrogateescape")))
    return listed


def read_allowlist(git: Git) -> Allowlist:
    """The allowlist as upstream's default branch has it: reviewed, and out of reach
    of the push being checked (a push cannot allow its own secret)."""
    p = git.run("cat-file", "blob", f"HEAD:{ALLOWLIST_FILE}", check=False)
    if p.returncode != 0:
        return Allowlist()
    return Allowlist.parse(p.stdout.decode("utf-8", "replace"))


def blob_origins(git: Git, tips: Sequence[str], blobs: set[str]) -> dict[str, tuple[str, str]]:
    """For each of `blobs`, the oldest new commit whose diff against a parent adds it,
    and the path it adds it at. Only run when a blob holds a secret, to say which
    commit to rewrite."""
    out = git.run(
        "log", "--raw", "-z", "--no-abbrev", "-m", "--topo-order", "--reverse",
        "--format=%x01%H", *tips, "--not", "--all",
    ).stdout  # fmt: skip
    origins: dict[str, tuple[str, str]] = {}
    commit = ""
    tokens = iter(out.split(b"\0"))
    for token in tokens:
        token = token.lstrip(b"\n")
        if token.startswith(b"\x01"):
            commit = token[1:].decode("ascii")
        elif token.startswith(b":"):
            path = next(tokens, b"").decode("utf-8", "surrogateescape")
            new = token.split()[3].decode("ascii")
            if new in blobs and new not in origins:
                origins[new] = (commit, path)
    return origins


def refs_reaching(git: Git, updates: Sequence[RefUpdate], oids: set[str]) -> dict[str, str]:
    """For each of `oids`, the first pushed ref through which it is new (for the
    report: which ref carries a finding)."""
    out: dict[str, str] = {}
    for u in updates:
        if u.deleted:
            continue
        for oid, _ in new_objects(git, [u.new]):
            if oid in oids:
                out.setdefault(oid, u.ref)
    return out


def parent_fingerprints(git: Git, commit: str, path: str, detector: Detector) -> set[str]:
    """Fingerprints of the secrets the parents' versions of `path` already hold."""
    found: set[str] = set()
    for parent in git.out("rev-parse", f"{commit}^@").split():
        p = git.run("cat-file", "blob", f"{parent}:{path}", check=False)
        if p.returncode == 0:
            found |= {f.fingerprint for f in detector.scan(p.stdout)}
    return found


def locate(
    git: Git, updates: Sequence[RefUpdate], findings: list[PushFinding], detector: Detector
) -> list[PushFinding]:
    """Findings with the commit that added each blob and the ref that carries it
    (redacted: a ref name can hold a secret).

    A blob is scanned whole, so a secret its file already held before the commit that
    changed it (a reviewed fixture upstream has, say) would be found again on every
    edit: such a finding is dropped. Sound because every new blob is scanned: the
    parent's version is either upstream already or new, and then reported itself unless
    its own parent's version had the secret, down to a blob upstream has."""
    tips = sorted({u.new for u in updates if not u.deleted})
    blobs = {f.object for f in findings if f.field == CONTENT}
    origins = blob_origins(git, tips, blobs) if blobs else {}
    refs = refs_reaching(git, updates, {f.object for f in findings if f.object})
    located = []
    for f in findings:
        commit, path = origins.get(f.object, ("", ""))
        if commit and f.fingerprint in parent_fingerprints(git, commit, path, detector):
            continue
        ref = redact(detector, refs.get(f.object, ""))
        path = f.path or redact(detector, path)
        located.append(replace(f, commit=commit, path=path, ref=ref))
    return located


def scan_push(
    git: Git, updates: Sequence[RefUpdate], detector: Detector, allowlist: Allowlist
) -> tuple[list[PushFinding], tuple[str, ...], int]:
    """Scan every new object and every pushed ref name: (findings, new commits, number
    of new objects)."""
    tips = sorted({u.new for u in updates if not u.deleted})
    listed = new_objects(git, tips)
    paths = dict(listed)
    commits: list[str] = []

    def objects() -> Iterator[GitObject]:
        for oid, kind, data in git.objects([oid for oid, _ in listed], MAX_OBJECT):
            if kind == "commit":
                commits.append(oid)
            yield GitObject(oid, kind, data, paths.get(oid, ""))

    pieces = chain(
        ref_pieces(u.ref for u in updates if not u.deleted),
        (p for o in objects() for p in object_pieces(o, len(o.oid) // 2)),
    )
    findings = scan_pieces(pieces, detector, allowlist)
    if findings:
        findings = locate(git, updates, findings, detector)
    return findings, tuple(commits), len(listed)


def check_push(
    git: Git, updates: Sequence[RefUpdate], rules: RefRules, detector: Detector
) -> PushVerdict:
    decisions = []
    for u in updates:
        needs_ff = rules.is_protected(u.ref) and not (u.created or u.deleted)
        ff = is_fast_forward(git, u) if needs_ff else True
        decisions.append((u, check_ref_update(u, rules, fast_forward=ff)))
    allowlist = read_allowlist(git)
    findings, commits, count = scan_push(git, updates, detector, allowlist)
    return PushVerdict(tuple(decisions), commits, tuple(findings), allowlist.warnings, count)
