"""What an agent may ask its operator: parsed from untrusted JSON with hard limits."""

from __future__ import annotations

import json

import pytest

from bot_bottle.policy.egress_policy import EgressPolicy, Route
from bot_bottle.policy.supervise import MAX_BODY, RESERVED_HOST, Ask, RateLimit, parse_ask


def ask(**fields: object) -> bytes:
    return json.dumps(
        {"kind": "route", "host": "api.example.com", "reason": "why", **fields}
    ).encode()


def test_a_route_request_is_read_with_defaults() -> None:
    a = parse_ask(ask(path="/v1/", methods=["GET", "GET", "POST"]))
    assert a == Ask("route", reason="why", host="api.example.com", path="/v1/",
                    methods=("GET", "POST"))  # fmt: skip
    assert a.summary() == "route https://api.example.com/v1/ (GET,POST)"
    assert parse_ask(ask(port=8443)).summary() == "route https://api.example.com:8443/ (any method)"


def test_a_question_needs_text() -> None:
    q = parse_ask(b'{"kind": "question", "question": "may I?"}')
    assert q.kind == "question" and q.question == "may I?"
    with pytest.raises(ValueError, match="question"):
        parse_ask(b'{"kind": "question", "question": "  "}')


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "JSON object"),
        (b"{", "not JSON"),
        (b'{"kind": "root"}', "kind"),
        (ask(reason=""), "reason"),
        (ask(host="127.1"), "host"),
        (ask(host=RESERVED_HOST), "host"),
        (ask(host="a.com/x"), "host"),
        (ask(path="v1"), "path"),
        (ask(path="/a/../b"), "path"),
        (ask(path="/a?x=1"), "path"),
        (ask(path="/a\x00"), "path"),
        (ask(methods=["FETCH"]), "methods"),
        (ask(methods="GET"), "methods"),
        (ask(port=0), "port"),
        (ask(port=True), "port"),
        (ask(extra=1), "unknown field"),
        (ask(reason="x" * 2000), "reason"),
        (b" " * (MAX_BODY + 1), "over"),
    ],
)
def test_bad_requests_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        parse_ask(body)


def test_the_rate_limit_allows_a_burst_then_one_per_interval() -> None:
    limit = RateLimit(burst=3, every=10.0)
    assert [limit.allow(100.0) for _ in range(4)] == [True, True, True, False]
    assert limit.allow(105.0) is False
    assert limit.allow(110.1) is True


def test_a_granted_route_ends_at_its_time() -> None:
    policy = EgressPolicy(bottle="b", routes=(Route("a.example.com"),
                                               Route("b.example.com", expires=50.0)))  # fmt: skip
    assert [r.host for r in policy.without_expired(49.0).routes] == [
        "a.example.com",
        "b.example.com",
    ]
    assert [r.host for r in policy.without_expired(50.0).routes] == ["a.example.com"]
    again = EgressPolicy.from_json(policy.to_json())
    assert again.routes[1].expires == 50.0
    with pytest.raises(ValueError, match="expires"):
        EgressPolicy.from_dict({"version": 1, "routes": [{"host": "a.com", "expires": "soon"}]})


@pytest.mark.parametrize(
    "text",
    [
        "clear \x1b[2J the screen",
        "osc \x1b]52;c;aGk=\x07",
        "bidi \u202e txet",
        "nul \x00",
        "c1 \x9b",
    ],
)
def test_reasons_and_questions_carry_no_terminal_controls(text: str) -> None:
    for kind, field in (("route", "reason"), ("question", "question")):
        ask = {"kind": kind, "host": "a.test", "reason": "r", "question": "q", field: text}
        with pytest.raises(ValueError, match=f"{field}: control or format character"):
            parse_ask(json.dumps(ask).encode())
    ok = parse_ask(json.dumps({"kind": "question", "question": "line one\n\tline two"}).encode())
    assert ok.question == "line one\n\tline two"


@pytest.mark.parametrize("path", ["/a b/", "/caf\u00e9/"])
def test_a_path_that_no_request_could_match_is_refused(path: str) -> None:
    # On the wire a path is percent-encoded: a route for "/a b/" would match nothing.
    with pytest.raises(ValueError, match="percent-encoded"):
        parse_ask(
            json.dumps({"kind": "route", "host": "a.test", "reason": "r", "path": path}).encode()
        )
    assert parse_ask(json.dumps({"kind": "route", "host": "a.test", "reason": "r",
                                 "path": "/a%20b/"}).encode()).path == "/a%20b/"  # fmt: skip


def test_a_request_id_with_a_trailing_newline_is_no_id() -> None:
    from bot_bottle.state.requests import ID_RE

    assert ID_RE.match("r-0123abcd") and not ID_RE.match("r-0123abcd\n")
