from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot_bottle.manifest.loader import LoadedManifest, parse_manifest


@pytest.fixture
def loaded(tmp_path: Path) -> Callable[[str], LoadedManifest]:
    def make(text: str) -> LoadedManifest:
        path = tmp_path / "bot-bottle.yaml"
        path.write_text(text)
        return LoadedManifest(parse_manifest(text), path, "sha256:test")

    return make
