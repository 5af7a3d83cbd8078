"""Path normalization: dot-segments, slashes, escapes, and the tricks that must be refused."""

from __future__ import annotations

import pytest

from bot_bottle.policy.route import PathRejected, normalize_path


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("/api", "/api"),
        ("/api/", "/api/"),
        ("/api/v1?x=1&y=/../z", "/api/v1"),
        ("/api/../admin", "/admin"),
        ("/api/./v1", "/api/v1"),
        ("/api/v1/.", "/api/v1/"),
        ("/api/v1/..", "/api/"),
        ("//api//v1", "/api/v1"),
        ("/api///", "/api/"),
        ("/%7Euser", "/~user"),
        ("/%41%62c", "/Abc"),
        ("/file%2etxt", "/file.txt"),
        ("/a%2a", "/a%2A"),
        ("/a%C3%A9", "/a%C3%A9"),
        ("/API/V1", "/API/V1"),
        ("/a...b/...", "/a...b/..."),
        ("/a;b=c/d", "/a;b=c/d"),
        ("/@scope/pkg", "/@scope/pkg"),
    ],
)
def test_normalize_path(target: str, expected: str) -> None:
    assert normalize_path(target) == expected


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/api/%2e%2e/admin", "encoded dot-segment"),
        ("/api/%2E%2E/admin", "encoded dot-segment"),
        ("/api/.%2e/admin", "encoded dot-segment"),
        ("/api/%2e./admin", "encoded dot-segment"),
        ("/api/%2E/admin", "encoded dot-segment"),
        ("/api%2fadmin", "encoded `/`"),
        ("/api%2Fadmin", "encoded `/`"),
        ("/api%5cadmin", "encoded `/` or `\\`"),
        ("/api%5C..%5Cadmin", "encoded `/` or `\\`"),
        ("/api\\..\\admin", "raw backslash"),
        ("/api\x00/x", "NUL"),
        ("/api%00.json", "NUL or control"),
        ("/api/\t", "control character"),
        ("/api%0d%0aX-Injected:1", "NUL or control"),
        ("/api/..;/admin", "parameters"),
        ("/api/.;x/admin", "parameters"),
        ("/api/%252e%252e/admin", "double-encoded"),
        ("/api%252fadmin", "double-encoded"),
        ("/..", "above the root"),
        ("/a/../../etc/passwd", "above the root"),
        ("api/v1", "not absolute"),
        ("", "not absolute"),
        ("*", "not absolute"),
        ("http://evil.com/api", "not absolute"),
        ("/api#frag", "disallowed character"),
        ("/api v1", "disallowed character"),
        ("/caf\u00e9", "disallowed character"),
        ("/a%zz", "malformed percent-escape"),
        ("/a%4", "malformed percent-escape"),
        ("/a?b=\x00", "query"),
    ],
)
def test_normalize_path_rejects(target: str, why: str) -> None:
    with pytest.raises(PathRejected, match=why.replace("\\", "\\\\").replace("`", ".")):
        normalize_path(target)


def test_normalize_path_is_idempotent() -> None:
    for target in ("/a/./b/../c//d/", "/%7e/x%2a", "/"):
        once = normalize_path(target)
        assert normalize_path(once) == once
