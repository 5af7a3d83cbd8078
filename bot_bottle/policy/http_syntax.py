"""Request syntax that every HTTP version agrees on, checked before anything is forwarded.

The proxy may receive a request in one protocol and forward it in another (HTTP/2 in,
HTTP/1.1 out). Bytes that are harmless in one framing are structure in the other: a
CR/LF inside an HTTP/2 header value becomes a header line, or a whole second request,
once written as HTTP/1.1 (request smuggling). So a request is refused unless each of
its parts is valid on *every* protocol (RFC 9110 §5.5, §9.1; RFC 9113 §8.2.1, §8.3.1).
Nothing here is normalized: the upstream must see exactly what was checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.rules import hint_for

# RFC 9110 §5.6.2 token: the grammar of field names and methods.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 9110 §5.5: field-vchar is VCHAR / obs-text; SP and HTAB only between them. Every
# other control (CR, LF and NUL above all) is refused, as is surrounding whitespace.
_FIELD_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?\Z"
)
# An authority carries no userinfo and no control, space or non-ASCII byte.
_AUTHORITY = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+\Z")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")
_SCHEMES = (b"", b"http", b"https")

HINT = hint_for("header")


@dataclass(frozen=True)
class RequestHead:
    """The parts of a request line or HTTP/2 pseudo-headers, as received (bytes)."""

    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes


def _show(raw: bytes) -> str:
    return repr(raw[:60])[1:]


def check_method(method: bytes) -> Decision:
    """Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET, and servers disagree on
    whether to fold it, so a method that is not an uppercase token is refused, not guessed."""
    if not _TOKEN.match(method) or method.upper() != method:
        return Decision.denied(
            "method",
            f"method {_show(method)} is not an uppercase token (methods are case-sensitive)",
            "send the method in uppercase, e.g. GET",
        )
    if method in _ECHOING:
        return Decision.denied(
            "method",
            f"method {_show(method)} asks the server to echo the request back, headers and"
            " the credential egress injects included",
            "none: use another method (no route can allow TRACE or TRACK)",
        )
    return Decision.allowed("method")


# Methods whose response echoes the request (RFC 9110 §9.3.8, and IIS's TRACK): on a
# route with `auth` the echo would hand the agent the credential it must never see.
_ECHOING = (b"TRACE", b"TRACK")


def check_fields(
    fields: Iterable[tuple[bytes, bytes]], http2: bool, what: str = "header"
) -> Decision:
    """Each (name, value) is valid on HTTP/1.1 and HTTP/2 alike. On HTTP/2 uppercase names
    are malformed (RFC 9113 §8.2.1); HTTP/1.1 names are case-insensitive, so allowed there."""
    for name, value in fields:
        if not _TOKEN.match(name):
            kind = "a pseudo-header" if name.startswith(b":") else "not a token"
            return Decision.denied("header", f"{what} name {_show(name)} is {kind}", HINT)
        if http2 and name.lower() != name:
            return Decision.denied(
                "header", f"{what} name {_show(name)} has uppercase letters (HTTP/2)", HINT
            )
        if not _FIELD_VALUE.match(value):
            return Decision.denied(
                "header",
                f"{what} {_show(name)} has a control character (CR, LF, NUL, ...) or "
                "surrounding whitespace in its value",
                HINT,
            )
    return Decision.allowed("header")


def check_head(head: RequestHead) -> Decision:
    """Request line / pseudo-headers: each must be free of anything a downgrade would
    turn into structure."""
    d = check_method(head.method)
    if not d.allow:
        return d
    if head.scheme not in _SCHEMES:
        return Decision.denied("header", f"scheme {_show(head.scheme)} is not http(s)", HINT)
    if head.authority and not _AUTHORITY.match(head.authority):
        return Decision.denied(
            "header", f"authority {_show(head.authority)} has characters a host cannot", HINT
        )
    if head.path and not _TARGET.match(head.path):
        return Decision.denied(
            "header", f"request target {_show(head.path)} has a space or control character", HINT
        )
    return Decision.allowed("header")


def check_transfer_coding(fields: Iterable[tuple[bytes, bytes]]) -> Decision:
    """A request body may be framed by chunking and nothing else. Other transfer codings
    (`gzip, chunked`, `deflate, chunked`) reach the proxy still compressed once the
    chunking is undone: DLP would scan the compressed stream, and the upstream would
    decompress what the scan never saw. No client needs them (content is compressed with
    Content-Encoding, which the DLP decodes), so they are refused, not decoded."""
    codings = [v for k, v in fields if k.lower() == b"transfer-encoding"]
    if not codings or [c.strip().lower() for c in codings] == [b"chunked"]:
        return Decision.allowed("header")
    shown = _show(b", ".join(codings))
    return Decision.denied(
        "header",
        f"transfer-encoding {shown} refused: a request body is framed by chunking alone",
        "send the body with Content-Length or `Transfer-Encoding: chunked`; compress with "
        "Content-Encoding",
    )


def check_request(
    head: RequestHead, fields: Iterable[tuple[bytes, bytes]], http2: bool
) -> Decision:
    """`check_head`, then `check_fields`, then `check_transfer_coding`; the first refusal
    wins."""
    fields = list(fields)
    d = check_head(head)
    if d.allow:
        d = check_fields(fields, http2)
    return d if not d.allow else check_transfer_coding(fields)


def is_websocket_upgrade(upgrade: str) -> bool:
    """The only protocol switch relayed is to WebSocket, which the proxy inspects."""
    return upgrade.strip().lower() == "websocket"
