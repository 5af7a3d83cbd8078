"""docs/manifest.md documents every field the schema has, and no field it lacks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot_bottle.manifest.model import Manifest

DOC = Path(__file__).parents[3] / "docs" / "manifest.md"


def schema_keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            out.add(key)
            schema_keys(value, out)
        for value in node.values():
            schema_keys(value, out)
    elif isinstance(node, list):
        for value in node:
            schema_keys(value, out)
    return out


def test_reference_matches_schema() -> None:
    keys = schema_keys(Manifest.model_json_schema(), set())
    text = DOC.read_text()
    index = text.split("## Field index", 1)[1]
    documented = set(re.findall(r"`([a-z_]+)`", index))
    assert keys - documented == set(), "fields missing from docs/manifest.md"
    assert documented - keys == set(), "docs/manifest.md names fields the schema lacks"
    body = text.split("## Field index", 1)[0]
    for key in keys:
        assert re.search(rf"\b{key}\b", body), f"{key} not described"
