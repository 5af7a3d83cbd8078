"""Host normalization and route host patterns: case, dots, IDN, wildcards, junk."""

from __future__ import annotations

import pytest

from bot_bottle.policy.egress_policy import Route
from bot_bottle.policy.route import find_host_route, normalize_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("ExAmPlE.CoM", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("1.2.3.4", "1.2.3.4"),
        ("[::1]", "[::1]"),
        ("[2001:DB8:0:0::1]", "[2001:db8::1]"),
        ("my_host.internal", "my_host.internal"),
    ],
)
def test_normalize_host_accepts(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "",
        ".",
        "example.com..",
        "a..example.com",
        ".example.com",
        "example.com:443",
        "user@example.com",
        "user:pw@example.com",
        "::1",
        "[::1]:443",
        "[::1",
        "[example.com]",
        "exa mple.com",
        "example.com\x00.evil.com",
        "example.com/path",
        "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth letters fold to a different name under IDNA
        "127.1",
        "0x7f.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "*.example.com",
        "a" * 64 + ".com",
    ],
)
def test_normalize_host_rejects(host: str) -> None:
    with pytest.raises(ValueError):
        normalize_host(host)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("example.com", "example.com", True),
        ("example.com", "EXAMPLE.com", True),
        ("example.com", "example.com.", True),
        ("Example.COM", "example.com", True),
        ("example.com", "www.example.com", False),
        ("example.com", "example.com.evil.com", False),
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "API.Example.COM.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*.example.com", ".example.com", False),
        ("*.example.com", "example.com.evil.com", False),
        ("*example.com", "evilexample.com", False),
        ("a.*.com", "a.b.com", False),
        ("*", "example.com", False),
        ("example.com", "ex\u0430mple.com", False),  # Cyrillic a (U+0430): a homograph
        ("*.example.com", "api.ex\u0430mple.com", False),
        ("example.com", "user@example.com", False),
        ("example.com", "example.com:443", False),
        ("example.com", "example.com\x00", False),
        ("bücher.de", "xn--bcher-kva.de", True),
        ("xn--bcher-kva.de", "BÜCHER.de", True),
        ("::1", "[::1]", True),
        ("1.2.3.4", "1.2.3.4", True),
        ("127.0.0.1", "127.1", False),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    route = Route(host=pattern)
    assert (find_host_route((route,), host) is route) is matches
