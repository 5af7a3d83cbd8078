"""What the git gate reports about a push: where a secret is (`PushFinding`), the
detector it asks (the shared DLP `Scanner`, as a protocol), and the repository's
reviewed allowlist of known false positives (`.bot-bottle-allowlist`).

What is scanned, and how, is `object_scan`. Pure: values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot_bottle.policy.globs import compile_glob, glob_match

MESSAGE_PATH = ""
"""`PushFinding.path` where there is no file (a message, a header)."""
CONTENT = "content"
"""`PushFinding.field` of a blob's content."""
REF_NAME = "ref name"
"""`PushFinding.field` of a pushed ref's name."""
ALLOWLIST_FILE = ".bot-bottle-allowlist"


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
    """A secret in a push, safe to show: where it is and what found it, never the
    value. `object` is the git object holding it ("" for a ref name), `field` the part
    of it (`CONTENT`, `commit author`, `tag message`, `tree entry`, `REF_NAME`, ...),
    `path` the file or entry path or ref name (secrets in it redacted), `commit` the
    first new commit that added a blob (when one did), `line` a line number (0: none),
    `ref` a pushed ref that carries it."""

    commit: str
    path: str
    line: int
    detector: str
    fingerprint: str
    object: str = ""
    field: str = CONTENT
    ref: str = ""

    def describe(self) -> str:
        what = f"{self.detector} (fingerprint {self.fingerprint})"
        if self.ref:
            what += f" via {self.ref}"
        if self.field == REF_NAME:
            return f"ref name {self.path}: {what}"
        if self.field == CONTENT:
            where = self.commit[:12] or f"blob {self.object[:12]}"
            return f"{where} {self.path or '(no path)'}:{self.line}: {what}"
        line = f":{self.line}" if self.line else ""
        path = f" {self.path}" if self.path else ""
        return f"{self.object[:12]} {self.field}{line}{path}: {what}"


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
