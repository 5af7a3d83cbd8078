"""The object scan: what of each git object is scanned, and how findings map back to
object, field, path and line, without carrying the secret."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from bot_bottle.policy.commit_scan import CONTENT, MESSAGE_PATH, REF_NAME, Allowlist, PushFinding
from bot_bottle.policy.object_scan import (
    GitObject,
    declared_text,
    object_pieces,
    redact,
    ref_pieces,
    scan_pieces,
    tree_entries,
    utf16_views,
)

C1 = "1" * 40
B1 = "b" * 40
T1 = "7" * 40


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


def scan(*objs: GitObject, refs: tuple[str, ...] = (), batch: int = 1 << 20) -> list[PushFinding]:
    pieces = [*ref_pieces(refs), *(p for o in objs for p in object_pieces(o, 20))]
    return scan_pieces(pieces, AkiaShim(), batch_bytes=batch)


def raw_tree(*entries: tuple[str, str]) -> bytes:
    return b"".join(m.encode() + b" " + n.encode() + b"\0" + bytes(20) for m, n in entries)


@pytest.mark.parametrize("batch", [1, 16, 1 << 20])
def test_blob_findings_carry_path_and_line(batch: int) -> None:
    objs = (
        GitObject(B1, "blob", b"nothing\n", "a.txt"),
        GitObject("c" * 40, "blob", f"one\ntwo\nkey={KEY}\n".encode(), "src/b.txt"),
        GitObject("d" * 40, "blob", KEY.encode(), ""),
    )
    found = scan(*objs, batch=batch)
    assert [(f.object[:1], f.field, f.path, f.line) for f in found] == [
        ("c", CONTENT, "src/b.txt", 3),
        ("d", CONTENT, "", 1),
    ]
    assert all(KEY not in f.describe() for f in found)
    assert found[1].describe().startswith("blob dddddddddddd (no path):1: aws-access-key")


def test_commit_headers_and_message_are_fields() -> None:
    raw = (
        f"tree {T1}\nparent {C1}\nauthor {KEY} <a@b> 1 +0000\n"
        f"committer c <{KEY}@x> 1 +0000\nx-note {KEY}\n continued\n\nsubject\n\nbody {KEY}\n"
    ).encode()
    found = scan(GitObject(C1, "commit", raw))
    assert [(f.field, f.line) for f in found] == [
        ("commit author", 0),
        ("commit committer", 0),
        ("commit header x-note", 0),
        ("commit message", 3),
    ]
    assert found[3].describe() == (
        f"{C1[:12]} commit message:3: aws-access-key (fingerprint fp-MNOP)"
    )


def test_header_key_holding_a_secret_is_redacted() -> None:
    raw = f"tree {T1}\n{KEY} value\n\nmsg\n".encode()
    (found,) = scan(GitObject(C1, "commit", raw))
    assert found.field == "commit header [secret fp-MNOP]"
    assert KEY not in found.describe()


def test_tag_name_tagger_and_message() -> None:
    raw = f"object {C1}\ntype commit\ntag v-{KEY}\ntagger {KEY} <t@x> 0 +0000\n\nmsg {KEY}\n"
    found = scan(GitObject(B1, "tag", raw.encode()))
    assert [f.field for f in found] == ["tag name", "tag tagger", "tag message"]


def test_tree_entry_names_under_their_path_redacted() -> None:
    tree = raw_tree(("100644", "ok.txt"), ("40000", f"d-{KEY}"), ("100644", f"{KEY}.env"))
    found = scan(GitObject(T1, "tree", tree, "conf"))
    assert [(f.field, f.path) for f in found] == [
        ("tree entry", "conf/d-[secret fp-MNOP]/"),
        ("tree entry", "conf/[secret fp-MNOP].env"),
    ]


def test_tree_entries_skip_binary_ids() -> None:
    tree = b"100644 a\0" + b"\0 AKIA" + bytes(14) + b"40000 b\0" + bytes(20)
    assert [(e.mode, e.name) for e in tree_entries(tree, 20)] == [
        (b"100644", b"a"),
        (b"40000", b"b"),
    ]
    with pytest.raises(ValueError):
        list(tree_entries(tree[:-1], 20))


def test_tree_modes_and_gitlink_ids_are_scanned() -> None:
    """A literal tree can carry bytes in a mode, and a submodule's id is never
    checked: both reach upstream."""
    tree = f"{KEY} x\0".encode() + bytes(20)
    tree += b"160000 sub\0" + KEY.encode()[:20]
    found = scan(GitObject(T1, "tree", tree))
    assert [(f.field, f.path) for f in found] == [("tree entry", "x"), ("tree entry", "sub")]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_is_read(codec: str) -> None:
    data = f"x {KEY} y".encode(codec)
    assert any(KEY.encode() in v for v in utf16_views(data))
    msg = b"tree " + T1.encode() + b"\n\n" + data
    assert [f.field for f in scan(GitObject(C1, "commit", msg))] == ["commit message"]
    assert [f.field for f in scan(GitObject(B1, "blob", data, "u.txt"))] == [CONTENT]


def test_no_views_without_nul() -> None:
    assert utf16_views(b"plain text") == []


def test_declared_encoding_is_decoded() -> None:
    assert declared_text(KEY.encode("utf-16"), "UTF-16") == KEY.encode()
    assert declared_text(b"+AEEASwBJAEE-", "UTF-7") == b"AKIA"
    assert declared_text(b"x", "utf-8") is None and declared_text(b"x", "") is None
    for odd in ("x-no-such-codec", "rot13", "base64"):
        with pytest.raises(ValueError, match="cannot decode"):
            declared_text(b"x", odd)
    raw = f"tree {T1}\nencoding UTF-7\n\n".encode() + b"+AEEASwBJAEE-" + KEY[4:].encode()
    found = scan(GitObject(C1, "commit", raw))
    assert [(f.field, f.line) for f in found] == [("commit message", 1)]


def test_unknown_object_type_fails() -> None:
    with pytest.raises(ValueError):
        scan(GitObject(B1, "weird", b""))


def test_ref_names() -> None:
    found = scan(refs=("refs/heads/ok", f"refs/tags/v-{KEY}"))
    assert [(f.field, f.path) for f in found] == [(REF_NAME, "refs/tags/v-[secret fp-MNOP]")]
    assert found[0].describe().startswith("ref name refs/tags/v-[secret fp-MNOP]: ")


def test_allowlist_applies_paths_to_content_only() -> None:
    allow = Allowlist.parse("path: fixtures/**\n")
    objs = [
        GitObject(B1, "blob", KEY.encode(), "fixtures/k.txt"),
        GitObject(T1, "tree", raw_tree(("100644", KEY)), "fixtures"),
    ]
    pieces = [p for o in objs for p in object_pieces(o, 20)]
    assert [f.field for f in scan_pieces(pieces, AkiaShim(), allow)] == ["tree entry"]


def test_redact() -> None:
    assert redact(AkiaShim(), f"a/{KEY}/b") == "a/[secret fp-MNOP]/b"
    assert redact(AkiaShim(), "clean") == "clean"


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


class TwoDetectors(AkiaShim):
    """A canary that is also a built-in format: two findings, one fingerprint."""

    def scan(self, data: bytes) -> list[F]:
        found = super().scan(data)
        return found + [F("canary", f.fingerprint, f.start, f.end) for f in found]


def test_each_detector_is_reported_once_per_place() -> None:
    data = KEY.encode("utf-16-le") + b"\n" + KEY.encode()
    pieces = list(object_pieces(GitObject(B1, "blob", data, "k"), 20))
    found = scan_pieces(pieces, TwoDetectors())
    assert sorted(f.detector for f in found) == ["aws-access-key", "canary"]
