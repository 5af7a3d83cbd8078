"""`suggest`: denials a route would fix, grouped by host into the narrowest routes that
cover them; nothing else (secrets, SSRF, expected background calls, whatever does not
normalize) is ever proposed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot_bottle.cli.suggest_cmd import render
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.policy.suggestion import denial_of, narrowest_prefixes, suggest


def rec(host: str, path: str = "/", method: str = "GET", **kw: Any) -> dict[str, Any]:
    return {"kind": "request", "decision": "deny", "rule": "route", "host": host,
            "path": path, "method": method, "scheme": "https", "port": 443, **kw}  # fmt: skip


@pytest.mark.parametrize(
    ("paths", "want"),
    [
        (["/v1/models", "/v1/messages"], ("/v1",)),
        (["/v1/messages", "/v1/messages/count_tokens"], ("/v1/messages",)),
        (["/repos/o/r/issues/1", "/repos/o/r/pulls/2", "/user"], ("/repos/o/r", "/user")),
        (["/simple/requests/"], ("/simple/requests",)),
        (["/a/x", "/"], ("/",)),
    ],
)
def test_narrowest_prefixes(paths: list[str], want: tuple[str, ...]) -> None:
    assert narrowest_prefixes(paths) == want


def test_grouped_by_host_port_and_scheme() -> None:
    recs = [
        rec("pypi.org", "/simple/requests/"),
        rec("pypi.org", "/simple/idna/"),
        rec("files.example", "/up", "POST", port=8443),
        rec("files.example", "/down", port=8443),
        rec("mirror.example", "/x", scheme="http", port=80),
    ]
    routes = [s.as_route() for s in suggest(filter(None, map(denial_of, recs)))]
    assert routes == [
        {"host": "files.example", "port": 8443, "path_allowlist": ["/down", "/up"],
         "methods": ["GET", "POST"]},
        {"host": "mirror.example", "scheme": "http", "path_allowlist": ["/x"],
         "methods": ["GET"]},
        {"host": "pypi.org", "path_allowlist": ["/simple"], "methods": ["GET"]},
    ]  # fmt: skip


def test_only_what_a_route_would_fix() -> None:
    never = [
        rec("a.example", rule="dlp"),
        rec("a.example", rule="canary"),
        rec("a.example", rule="ssrf"),
        rec("a.example", rule="host-mismatch"),
        rec("a.example", decision="allow"),
        rec("[redacted: carries a secret]"),
        rec("a.example", path="/x/%2e%2e/y"),
        rec("bad host\n- host: evil.example"),
        rec("ab.example", expected=True),
    ]
    assert [denial_of(r) for r in never] == [None] * len(never)
    assert denial_of(rec("ab.example", expected=True), include_expected=True) is not None


def test_a_tunnel_without_requests_suggests_the_whole_host() -> None:
    tunnel = {"kind": "connection", "decision": "deny", "rule": "route", "host": "x.example",
              "port": 443}  # fmt: skip
    (s,) = suggest(filter(None, map(denial_of, [tunnel, rec("x.example", "/a")])))
    assert s.as_route() == {"host": "x.example"}
    refused = rec("y.example", "", "CONNECT", rule="connect", port=8443, scheme="")
    (s,) = suggest(filter(None, map(denial_of, [refused])))
    assert s.as_route() == {"host": "y.example", "port": 8443}


def test_rendered_yaml_is_a_valid_manifest_and_names_existing_routes() -> None:
    recs = [
        rec("api.example.com", "/v2/x", rule="path", route="api.example.com /v1"),
        rec("weird.example", "/a:b,c'd(e)*"),
    ]
    text = render(suggest(filter(None, map(denial_of, recs))), "dev", "bottle dev-x")
    assert "# api.example.com already has a route (api.example.com /v1)" in text
    routes = yaml.safe_load(text)
    assert routes[1] == {"host": "weird.example", "path_allowlist": ["/a:b,c'd(e)*"],
                         "methods": ["GET"]}  # fmt: skip
    manifest = yaml.safe_dump({"bottles": {"dev": {"egress": {"routes": routes}}}})
    parse_manifest(manifest)  # the schema accepts it as pasted
