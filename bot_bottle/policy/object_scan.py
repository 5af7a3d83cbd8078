"""Secrets in the git objects a push adds, and in the names it pushes them under.

The git gate lists every object new to upstream (`rev-list --objects <tips> --not
--all`, whatever points at it: a commit, a tag, a ref straight at a blob or tree) and
hands each here with its raw bytes. What lands upstream, and so what is scanned:

- a blob's whole content (not a diff: a merge, an octopus or a tag can add one);
- a tree's entry names (file and directory names), each under its full path;
- a commit's or tag's every header (author, committer, tagger, the tag's name, extra
  headers) and its message, also decoded from a declared `encoding` and, where NUL
  bytes show UTF-16, read as UTF-16 in both byte orders;
- the pushed ref names (branch and tag names).

Pure: bytes in, findings out. A finding never carries the secret, and the paths and
ref names it carries have any secret in them replaced by its fingerprint.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from bot_bottle.policy.commit_scan import (
    CONTENT,
    MESSAGE_PATH,
    REF_NAME,
    Allowlist,
    Detector,
    PushFinding,
)

_UTF8 = frozenset({"utf-8", "utf8"})
_GITLINK = b"160000"
_NOTHING_ALLOWED = Allowlist()


@dataclass(frozen=True)
class GitObject:
    """One object new to upstream: `kind` is blob, tree, commit or tag; `path` is the
    path rev-list reached a blob or tree by ("" when a ref or tag points at it)."""

    oid: str
    kind: str
    data: bytes
    path: str = ""


@dataclass(frozen=True)
class _Piece:
    """A span of bytes to scan and where it sits: `field` as in `PushFinding`; `data`
    is what is scanned; `numbered` when a finding's line number is that of `data`."""

    obj: str
    field: str
    path: str
    data: bytes
    numbered: bool = False


def redact(detector: Detector, text: str) -> str:
    """`text` with every secret in it replaced by `[secret <fingerprint>]`."""
    raw = text.encode("utf-8", "surrogateescape")
    found = detector.scan(raw)
    if not found:
        return text
    out, pos = bytearray(), 0
    for f in sorted(found, key=lambda f: f.start):
        if f.start < pos:
            continue
        out += raw[pos : f.start] + f"[secret {f.fingerprint}]".encode()
        pos = f.end
    return (bytes(out) + raw[pos:]).decode("utf-8", "surrogateescape")


def utf16_views(data: bytes) -> list[bytes]:
    """The ASCII of UTF-16 text in either byte order and alignment: every other byte,
    from the first and from the second. Only for data with NUL bytes (UTF-16 of
    ASCII has one in every code unit; ordinary text never has any)."""
    if b"\0" not in data:
        return []
    return [data[0::2], data[1::2]]


class TreeEntry(NamedTuple):
    mode: bytes
    name: bytes
    oid: bytes  # binary


def tree_entries(data: bytes, oid_len: int) -> Iterator[TreeEntry]:
    """Each entry of a raw tree: `<mode> <name>\\0<binary oid>`; raises `ValueError`
    for a malformed one."""
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        oid = data[nul + 1 : nul + 1 + oid_len]
        if len(oid) != oid_len:
            raise ValueError("truncated tree entry")
        yield TreeEntry(data[pos:space], data[space + 1 : nul], oid)
        pos = nul + 1 + oid_len


def _split_headers(data: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Headers (key, whole header bytes, continuation lines included) and message."""
    head, sep, message = data.partition(b"\n\n")
    if not sep:
        head, message = data, b""
    headers: list[tuple[str, bytes]] = []
    for line in head.split(b"\n"):
        if line.startswith(b" ") and headers:
            key, value = headers[-1]
            headers[-1] = (key, value + b"\n" + line)
        else:
            headers.append((line.partition(b" ")[0].decode("ascii", "replace"), line))
    return headers, message


def declared_text(message: bytes, encoding: str) -> bytes | None:
    """The message re-encoded to UTF-8 from the encoding its header declares, or None
    when it declares UTF-8. Raises `ValueError` for an encoding Python cannot decode:
    what upstream would show is then unknown, so the push cannot be checked."""
    name = encoding.strip().lower()
    if not name or name in _UTF8:
        return None
    try:  # LookupError also for codecs that are not text encodings (rot13, base64)
        return message.decode(name, "replace").encode("utf-8", "surrogatepass")
    except LookupError:
        raise ValueError(f"declares encoding {encoding!r}, which the gate cannot decode") from None


def object_pieces(obj: GitObject, oid_len: int) -> Iterator[_Piece]:
    """What of `obj` lands upstream, as spans to scan."""
    if obj.kind == "blob":
        yield _Piece(obj.oid, CONTENT, obj.path, obj.data, numbered=True)
        for view in utf16_views(obj.data):
            yield _Piece(obj.oid, CONTENT, obj.path, view)
    elif obj.kind == "tree":
        base = f"{obj.path}/" if obj.path else ""
        for e in tree_entries(obj.data, oid_len):
            slash = "/" if e.mode in (b"40000", b"040000") else ""
            path = base + e.name.decode("utf-8", "surrogateescape") + slash
            # The mode too: written with --literally it can be any bytes, and a
            # plain upstream stores it as is.
            yield _Piece(obj.oid, "tree entry", path, e.mode + b" " + e.name)
            if e.mode == _GITLINK:
                # A submodule's commit id is never fetched or checked, so it can be
                # any bytes the agent likes: read them raw and as the hex git shows.
                yield _Piece(obj.oid, "tree entry", path, e.oid)
                yield _Piece(obj.oid, "tree entry", path, e.oid.hex().encode())
    elif obj.kind in ("commit", "tag"):
        headers, message = _split_headers(obj.data)
        for key, line in headers:
            label = _NAMED.get(key, f"header {key}")
            field = f"{obj.kind} {label}"
            yield _Piece(obj.oid, field, "", line)
        field = f"{obj.kind} message"
        yield _Piece(obj.oid, field, MESSAGE_PATH, message, numbered=True)
        for view in utf16_views(message):
            yield _Piece(obj.oid, field, MESSAGE_PATH, view)
        encoding = next((v[9:] for k, v in headers if k == "encoding"), b"")
        try:
            text = declared_text(message, encoding.decode("ascii", "replace"))
        except ValueError as e:
            raise ValueError(f"{obj.kind} {obj.oid[:12]} {e}") from None
        if text is not None:
            yield _Piece(obj.oid, field, MESSAGE_PATH, text, numbered=True)
    else:
        raise ValueError(f"object {obj.oid[:12]} has unknown type {obj.kind!r}")


# Header keys git itself writes; any other is an extra header (`commit header x-note`).
_NAMED = {k: k for k in ("tree", "parent", "author", "committer", "encoding", "object", "type")}
_NAMED |= {"tagger": "tagger", "tag": "name", "gpgsig": "signature", "mergetag": "mergetag"}


def ref_pieces(refs: Iterable[str]) -> Iterator[_Piece]:
    for ref in refs:
        yield _Piece("", REF_NAME, ref, ref.encode("utf-8", "surrogateescape"))


def scan_pieces(
    pieces: Iterable[_Piece],
    detector: Detector,
    allowlist: Allowlist = _NOTHING_ALLOWED,
    *,
    batch_bytes: int = 1 << 20,
) -> list[PushFinding]:
    """Run `detector` over every piece, in batches of about `batch_bytes` joined by
    newlines (one scanner call per batch), and map each finding back to its object,
    field, path and line. Paths in findings are redacted."""
    findings: list[PushFinding] = []
    batch: list[_Piece] = []
    starts: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not batch:
            return
        buf = batch[0].data if len(batch) == 1 else b"\n".join(p.data for p in batch)
        for f in detector.scan(buf):
            i = bisect_right(starts, f.start) - 1
            p = batch[i]
            allow_path = p.path if p.field == CONTENT else MESSAGE_PATH
            if allowlist.allows(allow_path, f.fingerprint):
                continue
            line = p.data.count(b"\n", 0, f.start - starts[i]) + 1 if p.numbered else 0
            path = redact(detector, p.path) if p.path else p.path
            # An extra header's key is the agent's too (`commit header <key>`).
            field = redact(detector, p.field)[:80]
            findings.append(PushFinding("", path, line, f.detector, f.fingerprint, p.obj, field))
        batch.clear()
        starts.clear()
        size = 0

    for p in pieces:
        if size + len(p.data) > batch_bytes:
            flush()
        starts.append(size)
        batch.append(p)
        size += len(p.data) + 1
    flush()
    return _dedupe(findings)


def _dedupe(findings: list[PushFinding]) -> list[PushFinding]:
    """One finding per secret and place: a UTF-16 view and a declared-encoding view
    may find what the raw bytes already showed."""
    seen: set[tuple[str, str, str, str, str]] = set()
    out: list[PushFinding] = []
    for f in findings:
        key = (f.object, f.field, f.path, f.detector, f.fingerprint)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
