"""Request syntax valid on every HTTP version: what a downgrade could turn into structure."""

from __future__ import annotations

import pytest

from bot_bottle.policy.http_syntax import (
    RequestHead,
    check_fields,
    check_head,
    check_method,
    check_request,
    check_transfer_coding,
    is_websocket_upgrade,
)


@pytest.mark.parametrize("method", [b"GET", b"POST", b"PROPFIND", b"M-SEARCH", b"VERSION-CONTROL"])
def test_uppercase_token_methods_pass(method: bytes) -> None:
    assert check_method(method).allow


@pytest.mark.parametrize("method", [b"get", b"Get", b"GET ", b"G\x00T", b"", b"GE\r\nT", b"G/T"])
def test_other_methods_refused(method: bytes) -> None:
    d = check_method(method)
    assert not d.allow and d.rule == "method" and "uppercase token" in d.reason


@pytest.mark.parametrize("method", [b"TRACE", b"TRACK"])
def test_echoing_methods_refused(method: bytes) -> None:
    d = check_method(method)
    assert not d.allow and d.rule == "method" and "echo" in d.reason


@pytest.mark.parametrize(
    "value",
    [b"", b"v", b"a b", b"a\tb", b"\xc3\xa9t\xc3\xa9", b"Bearer x.y.z", b"!~"],
)
def test_good_values(value: bytes) -> None:
    assert check_fields([(b"x-a", value)], http2=True).allow


@pytest.mark.parametrize(
    "value",
    [b"a\r\nb", b"a\nb", b"a\rb", b"a\x00b", b" a", b"a ", b"\ta", b"a\t", b"a\x01b", b"a\x7fb",
     b"x\r\n x"],  # the last is HTTP/1.1 obs-fold as mitmproxy joins it
    ids=["crlf", "lf", "cr", "nul", "lead-sp", "trail-sp", "lead-tab", "trail-tab", "ctl", "del",
         "obs-fold"],
)  # fmt: skip
def test_bad_values_refused(value: bytes) -> None:
    for http2 in (True, False):
        d = check_fields([(b"x-a", value)], http2=http2)
        assert not d.allow and d.rule == "header"


@pytest.mark.parametrize("name", [b"", b"x a", b":path", b"x:a", b"x\r\na", b"x\x00", b"\xc3\xa9"])
def test_bad_names_refused(name: bytes) -> None:
    assert not check_fields([(name, b"v")], http2=False).allow


def test_uppercase_names_only_malformed_on_http2() -> None:
    assert check_fields([(b"X-Upper", b"v")], http2=False).allow
    d = check_fields([(b"X-Upper", b"v")], http2=True)
    assert not d.allow and "uppercase" in d.reason


def test_trailers_named_in_reason() -> None:
    d = check_fields([(b"x-t", b"a\nb")], http2=True, what="trailer")
    assert "trailer" in d.reason


def head(**kw: bytes) -> RequestHead:
    base = {"method": b"GET", "scheme": b"https", "authority": b"api.example.test:443",
            "path": b"/v1/x?q=1"}  # fmt: skip
    return RequestHead(**{**base, **kw})


def test_good_head() -> None:
    assert check_head(head()).allow
    assert check_head(head(authority=b"[::1]:8443", scheme=b"")).allow


@pytest.mark.parametrize(
    "bad",
    [{"authority": b"a.test\r\nx: y"}, {"authority": b"user@a.test"}, {"authority": b"a b"},
     {"path": b"/v1/x HTTP/1.1\r\nHost: evil"}, {"path": b"/v1/\x00"}, {"path": b"/v1/\xff"},
     {"scheme": b"ftp"}, {"scheme": b"https\r\n"}, {"method": b"get"}],
)  # fmt: skip
def test_bad_heads_refused(bad: dict[str, bytes]) -> None:
    assert not check_head(head(**bad)).allow


def test_check_request_checks_both() -> None:
    assert check_request(head(), [(b"x", b"y")], http2=True).allow
    assert not check_request(head(), [(b"x", b"y\n")], http2=True).allow
    assert not check_request(head(method=b"get"), [], http2=True).allow


@pytest.mark.parametrize(("value", "ok"), [("websocket", True), ("WebSocket ", True),
                                           ("h2c", False), ("raw-tcp", False),
                                           ("websocket, h2c", False), ("", False)])  # fmt: skip
def test_only_websocket_upgrades(value: str, ok: bool) -> None:
    assert is_websocket_upgrade(value) is ok


@pytest.mark.parametrize(
    "codings",
    [[], [b"chunked"], [b"Chunked"], [b" chunked "]],
)
def test_chunking_alone_frames_a_body(codings: list[bytes]) -> None:
    fields = [(b"transfer-encoding", c) for c in codings]
    assert check_transfer_coding(fields).allow


@pytest.mark.parametrize(
    "codings",
    [[b"gzip, chunked"], [b"deflate,chunked"], [b"gzip"], [b"chunked", b"chunked"],
     [b"identity"], [b"x-custom, chunked"]],
)  # fmt: skip
def test_other_transfer_codings_refused(codings: list[bytes]) -> None:
    fields = [(b"Transfer-Encoding", c) for c in codings]
    d = check_transfer_coding(fields)
    assert not d.allow and d.rule == "header" and "Content-Encoding" in d.hint
    head = RequestHead(b"POST", b"http", b"a.test", b"/")
    assert not check_request(head, fields, http2=False).allow
