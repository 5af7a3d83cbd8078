"""Added-line extraction from `git log -p` output, and mapping findings back to lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from bot_bottle.policy.commit_scan import (
    MESSAGE_PATH,
    AddedLine,
    Allowlist,
    added_lines,
    scan_added_lines,
)

C1 = "1" * 40
C2 = "2" * 40


def log(*chunks: str) -> list[bytes]:
    return "".join(chunks).encode().splitlines(keepends=True)


HEADER_F = "diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n"

CASES = [
    pytest.param(
        log(f"\x01{C1}\n subject\n\n", HEADER_F, "@@ -1,2 +1,3 @@\n a\n+X\n b\n"),
        [(C1, MESSAGE_PATH, 1, b"subject"), (C1, "f", 2, b"X")],
        id="one-added-line",
    ),
    pytest.param(
        log(
            f"\x01{C1}\n s\n\n",
            "diff --git a/g b/g\nnew file mode 100644\n--- /dev/null\n+++ b/g\n",
            "@@ -0,0 +1,2 @@\n++++ not a header\n+--- nor this\n",
        ),
        [
            (C1, MESSAGE_PATH, 1, b"s"),
            (C1, "g", 1, b"+++ not a header"),
            (C1, "g", 2, b"--- nor this"),
        ],
        id="content-that-looks-like-headers",
    ),
    pytest.param(
        log(
            f"\x01{C1}\n s\n\n",
            HEADER_F,
            "@@ -1,3 +1,2 @@\n-a\n-b\n+c\n d\n\\ No newline at end of file\n",
            "@@ -10 +9 @@\n-x\n+y\n",
            "diff --git a/h b/h\ndeleted file mode 100644\n--- a/h\n+++ /dev/null\n",
            "@@ -1 +0,0 @@\n-gone\n",
        ),
        [(C1, MESSAGE_PATH, 1, b"s"), (C1, "f", 1, b"c"), (C1, "f", 9, b"y")],
        id="deletions-and-multiple-hunks",
    ),
    pytest.param(
        log(
            f"\x01{C1}\n add\n\n",
            HEADER_F,
            "@@ -0,0 +1 @@\n+secret\n",
            f"\x01{C2}\n remove\n\n",
            HEADER_F,
            "@@ -1 +0,0 @@\n-secret\n",
        ),
        [(C1, MESSAGE_PATH, 1, b"add"), (C1, "f", 1, b"secret"), (C2, MESSAGE_PATH, 1, b"remove")],
        id="added-then-removed-is-still-seen",
    ),
    pytest.param(
        log(f"\x01{C1}\n line one\n \n diff --git a/x b/x\n +++ b/x\n\n"),
        [
            (C1, MESSAGE_PATH, 1, b"line one"),
            (C1, MESSAGE_PATH, 3, b"diff --git a/x b/x"),
            (C1, MESSAGE_PATH, 4, b"+++ b/x"),
        ],
        id="message-cannot-fake-a-diff",
    ),
    pytest.param(
        log(
            f"\x01{C1}\n s\n\n",
            'diff --git "a/t\\tx" "b/t\\tx"\n--- /dev/null\n+++ "b/t\\tx\\303\\251"\n',
            "@@ -0,0 +1 @@\n+v\n",
        ),
        [(C1, MESSAGE_PATH, 1, b"s"), (C1, "t\txé", 1, b"v")],
        id="quoted-path",
    ),
    pytest.param(
        log(f"\x01{C1}\n s\n\n", "diff --git a/b b/b\nBinary files a/b and b/b differ\n"),
        [(C1, MESSAGE_PATH, 1, b"s")],
        id="binary-summary-has-no-lines",
    ),
]


@pytest.mark.parametrize(("lines", "expected"), CASES)
def test_added_lines(lines: list[bytes], expected: list[tuple[str, str, int, bytes]]) -> None:
    assert [tuple(a) for a in added_lines(lines)] == expected


@dataclass(frozen=True)
class F:
    detector: str
    fingerprint: str
    start: int
    end: int


class AkiaShim:
    """Test stand-in for the shared DLP Scanner."""

    def scan(self, data: bytes) -> list[F]:
        return [
            F("aws-access-key", "fp-" + m.group().decode()[-4:], m.start(), m.end())
            for m in re.finditer(rb"AKIA[0-9A-Z]{16}", data)
        ]


KEY = "AKIA" + "ABCDEFGHIJKLMNOP"


@pytest.mark.parametrize("batch", [1, 16, 1 << 20])
def test_scan_maps_findings_to_lines(batch: int) -> None:
    lines = [
        AddedLine(C1, "a.txt", 1, b"nothing"),
        AddedLine(C1, "a.txt", 2, f"key={KEY}".encode()),
        AddedLine(C2, "b.txt", 7, KEY.encode()),
        AddedLine(C2, MESSAGE_PATH, 1, b"msg " + KEY.encode()),
    ]
    found = scan_added_lines(lines, AkiaShim(), batch_bytes=batch)
    assert [(f.commit, f.path, f.line) for f in found] == [
        (C1, "a.txt", 2),
        (C2, "b.txt", 7),
        (C2, MESSAGE_PATH, 1),
    ]
    assert all(KEY not in f.describe() for f in found)


@pytest.mark.parametrize(
    ("allow", "path", "fp", "allowed"),
    [
        ("fingerprint: fp-MNOP\n", "x", "fp-MNOP", True),
        ("path: tests/**  # fixtures\n", "tests/a/b.txt", "z", True),
        ("path: tests/**\n", "src/a", "z", False),
        ("path: **\n", MESSAGE_PATH, "z", False),
        ("# only a comment\n", "x", "fp-MNOP", False),
    ],
)
def test_allowlist(allow: str, path: str, fp: str, allowed: bool) -> None:
    assert Allowlist.parse(allow).allows(path, fp) is allowed


def test_allowlist_warns_on_unknown_lines() -> None:
    a = Allowlist.parse("AKIA...\nfingerprint:\n")
    assert len(a.warnings) == 2 and not a.fingerprints
