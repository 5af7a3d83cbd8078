"""Route `scheme` and `port` in the manifest: defaults, and `auth` only over https."""

from __future__ import annotations

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest

B = "bottles: {dev: {egress: {routes: [%s]}}}\nagents: {c: {bottle: dev}}"


def test_defaults_are_https_443_and_http_80() -> None:
    m = parse_manifest(B % "{host: a.com}, {host: b.com, scheme: http}, {host: c.com, port: 8443}")
    got = [(r.scheme, r.effective_port) for r in m.bottles["dev"].egress.routes]
    assert got == [("https", 443), ("http", 80), ("https", 8443)]


@pytest.mark.parametrize(
    ("route", "path", "fragment"),
    [
        ("{host: a.com, scheme: http, auth: {scheme: Bearer, token_ref: T}}", "bottles.dev.egress.routes[0].auth", "only over verified TLS"),
        ("{host: a.com, scheme: http, port: 8080, auth: {scheme: Bearer, token_ref: T}}", "bottles.dev.egress.routes[0].auth", "never on an `http` route"),
        ("{host: a.com, scheme: http, tls_passthrough: true}", "bottles.dev.egress.routes[0]", "cannot be an `http` route"),
        ("{host: a.com, scheme: ftp}", "bottles.dev.egress.routes[0].scheme", "'https' or 'http'"),
        ("{host: a.com, port: 0}", "bottles.dev.egress.routes[0].port", "greater than or equal to 1"),
        ("{host: a.com, port: 65536}", "bottles.dev.egress.routes[0].port", "less than or equal to 65535"),
    ],
)  # fmt: skip
def test_errors_name_the_field(route: str, path: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(B % route)
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value) and info.value.exit_code == 2
