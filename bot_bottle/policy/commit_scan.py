"""What a push adds, line by line, and which of those lines carry a secret.

The git gate runs one `git log -p` over the incoming commits (see `LOG_FORMAT_ARGS`);
this module parses that output into added lines (file, line number, commit), runs
the shared DLP detectors over them, and drops findings the repository's reviewed
allowlist (`.bot-bottle-allowlist`) accepts. Pure: bytes in, values out.

Every commit is diffed against its parent, not the push as a whole against upstream,
so a secret added in one commit and removed in a later one is still found.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from bot_bottle.policy.globs import compile_glob, glob_match

COMMIT_MARK = b"\x01"
LOG_FORMAT_ARGS = (
    # The message is indented by one space (%w(0,1,1)), so no message line can pass
    # for a commit marker or a `diff --git` header and hide what follows from the scan.
    "--format=%x01%H%n%w(0,1,1)%B",
    "-p",
    # Binary files are diffed as text: a key inside a "binary" file still leaves.
    "--text",
    "-M",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    # For a merge, what the merge itself adds beyond an automatic re-merge (an evil
    # merge or a conflict resolution); what the parents added is scanned in them.
    "--diff-merges=remerge",
    # With the mirror's commit-graph, topo order walks by generation number and stops
    # at upstream's commits; the default order walks all of history (one commit pushed
    # onto 100k: 3 ms against 65 ms, git 2.39, measured as in benchmarks/git_gate.py).
    "--topo-order",
)
MESSAGE_PATH = ""
"""`AddedLine.path` of a commit-message line."""
ALLOWLIST_FILE = ".bot-bottle-allowlist"

_HUNK = re.compile(rb"^@@+ (?:-\d+(?:,\d+)? )+\+(\d+)(?:,(\d+))? @@")


class AddedLine(NamedTuple):
    """One line a commit adds (`path` is `MESSAGE_PATH` for its message). A NamedTuple,
    not a dataclass: one is built per added line, and this is the scan's hot path."""

    commit: str
    path: str
    line: int
    text: bytes


class Finding(Protocol):
    """What the shared DLP `Scanner` reports (`bot_bottle.policy.dlp.Finding`)."""

    @property
    def detector(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class Detector(Protocol):
    """The shared DLP `Scanner`: finds secrets in a buffer, reports offsets."""

    def scan(self, data: bytes) -> Sequence[Finding]: ...


@dataclass(frozen=True)
class PushFinding:
    """A secret in a pushed commit, safe to show: where it is and what found it,
    never the value."""

    commit: str
    path: str
    line: int
    detector: str
    fingerprint: str

    def describe(self) -> str:
        where = "commit message" if self.path == MESSAGE_PATH else self.path
        return (
            f"{self.commit[:12]} {where}:{self.line}: {self.detector} "
            f"(fingerprint {self.fingerprint})"
        )


def _unquote_path(raw: bytes) -> str:
    """Git's C-style quoting of unusual paths (`"a\\tb"`, octal for non-ASCII)."""
    if not raw.startswith(b'"'):
        return raw.decode("utf-8", "surrogateescape")
    body = raw[1:-1] if raw.endswith(b'"') else raw[1:]
    out = bytearray()
    i = 0
    simple = {ord("n"): 10, ord("t"): 9, ord("a"): 7, ord("b"): 8, ord("f"): 12}
    simple |= {ord("r"): 13, ord("v"): 11, ord('"'): 34, ord("\\"): 92}
    while i < len(body):
        c = body[i]
        if c == 0x5C and i + 1 < len(body):
            n = body[i + 1]
            if 0x30 <= n <= 0x37 and i + 3 < len(body) + 1:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(simple.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _new_path(line: bytes) -> str:
    """The path from a `+++ b/path` header, or "" for `+++ /dev/null`."""
    raw = line[4:].rstrip(b"\r\n")
    if raw == b"/dev/null":
        return ""
    name = _unquote_path(raw)
    return name[2:] if name.startswith("b/") else name


def added_lines(log: Iterable[bytes]) -> Iterator[AddedLine]:
    """Parse `git log <LOG_FORMAT_ARGS>` output (an iterable of lines) into the lines
    each commit adds, message lines included."""
    commit = ""
    path = ""
    state = "none"  # none | message | header | hunk
    new_line = 0
    remaining = 0  # new-side lines left in the current hunk
    old_left = 0  # old-side lines left (deleted lines still to come)
    msg_line = 0
    for raw in log:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if state == "hunk":
            if remaining > 0 or old_left > 0:
                tag = line[:1]
                if tag == b"+":
                    yield AddedLine(commit, path, new_line, line[1:])
                    new_line += 1
                    remaining -= 1
                    continue
                if tag == b" " or line == b"":
                    new_line += 1
                    remaining -= 1
                    old_left -= 1
                    continue
                if tag == b"-":
                    old_left -= 1
                    continue
                if tag == b"\\":
                    continue
            elif line.startswith(b"\\"):
                continue
            state = "header"
        if line.startswith(COMMIT_MARK):
            commit = line[1:].decode("ascii", "replace").strip()
            state, msg_line, path = "message", 0, ""
            continue
        if state == "message":
            if line.startswith(b"diff "):
                state = "header"
            else:
                msg_line += 1
                if line.strip():
                    yield AddedLine(commit, MESSAGE_PATH, msg_line, line[1:])
                continue
        if state == "header":
            if line.startswith(b"diff "):
                path = ""
            elif line.startswith(b"+++ "):
                path = _new_path(line)
            elif line.startswith(b"@@"):
                m = _HUNK.match(line)
                if m is None:
                    continue
                new_line = int(m.group(1))
                remaining = int(m.group(2)) if m.group(2) is not None else 1
                old_left = _old_count(line)
                state = "hunk"


def _old_count(hunk: bytes) -> int:
    """Old-side line count of a hunk header (`@@ -a,b +c,d @@`), summed over the
    parents for combined diffs."""
    total = 0
    for m in re.finditer(rb"-\d+(?:,(\d+))?", hunk.split(b" +", 1)[0]):
        total += int(m.group(1)) if m.group(1) is not None else 1
    return total


@dataclass(frozen=True)
class Allowlist:
    """Known false positives, from `.bot-bottle-allowlist` as upstream already has it
    (so the agent cannot allow its own secret in the same push). Lines:
    `fingerprint:<fp>` or `path:<glob>`; `#` starts a comment."""

    fingerprints: frozenset[str] = frozenset()
    paths: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        fps: set[str] = set()
        paths: list[str] = []
        warnings: list[str] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            kind, _, value = line.partition(":")
            kind, value = kind.strip().lower(), value.strip()
            if kind == "fingerprint" and value:
                fps.add(value)
            elif kind == "path" and value:
                try:
                    compile_glob(value)
                except ValueError as e:
                    warnings.append(f"{ALLOWLIST_FILE}:{n}: {e}")
                    continue
                paths.append(value)
            else:
                warnings.append(
                    f"{ALLOWLIST_FILE}:{n}: expected 'fingerprint:<fp>' or 'path:<glob>'"
                )
        return cls(frozenset(fps), tuple(paths), tuple(warnings))

    def allows(self, path: str, fingerprint: str) -> bool:
        if fingerprint in self.fingerprints:
            return True
        return path != MESSAGE_PATH and any(glob_match(p, path) for p in self.paths)


def scan_added_lines(
    lines: Iterable[AddedLine],
    detector: Detector,
    allowlist: Allowlist = Allowlist(),
    *,
    batch_bytes: int = 1 << 20,
) -> list[PushFinding]:
    """Run `detector` over every added line, in batches of about `batch_bytes` joined
    by newlines (one scanner call per batch, not per line), and map each finding back
    to its commit, file and line."""
    findings: list[PushFinding] = []
    batch: list[AddedLine] = []
    starts: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not batch:
            return
        buf = b"\n".join(a.text for a in batch)
        for f in detector.scan(buf):
            src = batch[bisect_right(starts, f.start) - 1]
            if not allowlist.allows(src.path, f.fingerprint):
                findings.append(
                    PushFinding(src.commit, src.path, src.line, f.detector, f.fingerprint)
                )
        batch.clear()
        starts.clear()
        size = 0

    for a in lines:
        starts.append(size)
        batch.append(a)
        size += len(a.text) + 1
        if size >= batch_bytes:
            flush()
    flush()
    return findings
