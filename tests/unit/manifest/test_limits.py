"""A manifest too large, too long or alias-bombed is refused quickly with exit 2 and a
message saying which limit; the limits are documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import MAX_BYTES, MAX_NODES, load_manifest, parse_manifest
from bot_bottle.manifest.model import LIMITS

DOC = Path(__file__).parents[3] / "docs" / "manifest.md"


def routes(n: int) -> str:
    body = "".join(f"        - {{host: h{i}.example.com}}\n" for i in range(n))
    return "bottles:\n  b:\n    egress:\n      routes:\n" + body + "agents: {a: {bottle: b}}\n"


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bot-bottle.yaml"
    path.write_text(routes(100_000))  # the 7 MB manifest that took 57 s and 600 MB
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert f"at most {MAX_BYTES >> 10} KiB" in str(info.value)
    assert info.value.exit_code == 2


def test_too_many_routes_names_the_field() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(routes(LIMITS["routes"] + 1))
    assert info.value.path == "bottles.b.egress.routes"
    assert f"at most {LIMITS['routes']} items" in str(info.value)
    parse_manifest(routes(LIMITS["routes"]))


def test_alias_bomb_is_refused() -> None:
    lines = ["x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ManifestError, match=f"more than {MAX_NODES} values"):
        parse_manifest("\n".join(lines))


def test_deep_nesting_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="too deeply"):
        parse_manifest("a: " + "[" * 50_000 + "]" * 50_000)


def test_limits_are_documented() -> None:
    text = DOC.read_text()
    assert f"{MAX_BYTES >> 10} KiB" in text and f"{MAX_NODES}" in text
    for field, limit in LIMITS.items():
        assert f"`{field}` {limit}" in text, field
