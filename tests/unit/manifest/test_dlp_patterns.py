"""Operator DLP patterns are compiled by Hyperscan: a pattern that backtracks
catastrophically in `re` scans in linear time, and what Hyperscan cannot compile is
refused at validation with the field path."""

from __future__ import annotations

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.policy.dlp import Scanner
from bot_bottle.policy.egress_policy import EgressPolicy

B = "bottles: {dev: {egress: {dlp: {patterns: %s}}}}\nagents: {c: {bottle: dev}}"


@pytest.mark.parametrize(
    ("patterns", "path", "fragment"),
    [
        ("['a(?=b)']", "bottles.dev.egress.dlp.patterns[0]", "Zero-width assertions"),
        ("['ok-[0-9]+', '(a)\\1']", "bottles.dev.egress.dlp.patterns[1]", "Back-references"),
        ("['x*']", "bottles.dev.egress.dlp.patterns[0]", "matches the empty string"),
        ("['(']", "bottles.dev.egress.dlp.patterns[0]", "invalid regex"),
    ],
)
def test_uncompilable_pattern_is_refused_with_path(patterns: str, path: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(B % patterns)
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value) and info.value.exit_code == 2


def test_routes_file_refuses_uncompilable_pattern() -> None:
    with pytest.raises(ValueError, match=r"dlp.patterns\[0\]: invalid regex"):
        EgressPolicy.from_dict({"version": 1, "dlp": {"patterns": ["a(?=b)"]}})


@pytest.mark.timeout(20)
def test_catastrophic_pattern_scans_in_linear_time() -> None:
    # With Python's `re` this input takes 2**40 steps; Hyperscan is one pass.
    parse_manifest(B % "['(a+)+$']")
    scanner = Scanner(patterns=["(a+)+$"], builtin=False)
    assert scanner.first("a" * 40 + "!") is None
    assert scanner.first("a" * 200_000 + "!") is None
    f = scanner.first("x aaaa")
    assert f is not None and f.detector == "custom:0"
