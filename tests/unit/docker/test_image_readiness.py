"""What a Docker launch would meet getting its agent image, asked of a fake engine
that only answers which tags it has (the real lookups are in the integration tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from bot_bottle.images import build
from bot_bottle.images.bootstrap import BASE_TAG
from bot_bottle.images.readiness import bundled_for, readiness


class Images:
    def __init__(self, tags: set[str]) -> None:
        self.tags = tags

    def get(self, tag: str) -> object:
        if tag not in self.tags:
            raise docker.errors.ImageNotFound(tag)
        return object()


class Engine:
    def __init__(self, *tags: str) -> None:
        self.images = Images(set(tags))


@pytest.fixture(autouse=True)
def _ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"ca")
    monkeypatch.setattr(build, "host_ca_bundle", lambda: ca)
    monkeypatch.setattr("bot_bottle.images.readiness.host_ca_bundle", lambda: ca)


def _tag(role: str) -> str:
    spec = bundled_for(role)
    assert spec is not None
    return build.tag_for(spec, b"ca")


def test_built_image_is_ready() -> None:
    engine: Any = Engine(_tag("claude"))
    assert readiness("claude", "", engine) == ([], [])


def test_missing_image_with_base_is_built_first() -> None:
    engine: Any = Engine(BASE_TAG)
    blockers, notes = readiness("claude", "", engine)
    assert blockers == [] and "first launch builds" in notes[0] and _tag("claude") in notes[0]


def test_missing_image_without_base_is_a_blocker() -> None:
    engine: Any = Engine()
    blockers, notes = readiness("general", "", engine)
    assert notes == [] and BASE_TAG in blockers[0].message
    assert "images bootstrap" in blockers[0].fix


def test_foreign_image_must_be_on_the_engine() -> None:
    engine: Any = Engine("mine:1")
    assert readiness("mine:1", "", engine) == ([], [])
    blockers, _ = readiness("mine:2", "", engine)
    assert "mine:2 is not on the Docker engine" in blockers[0].message


def test_custom_dockerfile(tmp_path: Path) -> None:
    engine: Any = Engine()
    blockers, _ = readiness("", str(tmp_path / "nope" / "Dockerfile"), engine)
    assert "does not exist" in blockers[0].message
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    blockers, notes = readiness("", str(tmp_path / "Dockerfile"), engine)
    assert blockers == [] and "first launch builds" in notes[0]
