"""Which guest root a plan's agent image gets, and finding a made root by its tag
without the engine: the mapping is the Docker backend's own (asked of a fake engine that
only answers which tags it has); building and booting roots is in the integration
tests (tests/integration/microvm/test_agent_roots.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from bot_bottle.images import agent_image, build
from bot_bottle.images.guest import rootfs, store
from bot_bottle.images.guest.store import cached_root_for, ensure_root_for


class Images:
    def get(self, tag: str) -> object:  # every tag is there: nothing gets built
        return object()


class Engine:
    images = Images()


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pem = tmp_path / "ca.pem"
    pem.write_bytes(b"ca")
    monkeypatch.setattr(build, "host_ca_bundle", lambda: pem)
    monkeypatch.setattr(agent_image, "host_ca_bundle", lambda: pem)
    return pem


def test_bundled_roles_map_to_their_digest_tags(ca: Path) -> None:
    for role in ("general", "claude", "codex"):
        got = agent_image.resolve(role)
        assert got == agent_image.AgentImage(build.tag_for(build.BUNDLED[f"agent-{role}"],
                                                           b"ca"), True)  # fmt: skip
        engine: Any = Engine()
        assert agent_image.ensure_image(role, client=engine) == got


def test_other_references_are_used_as_given(ca: Path) -> None:
    assert agent_image.resolve("python:3.11") == agent_image.AgentImage("python:3.11", False)


def test_own_dockerfile_tag_is_the_one_the_docker_backend_builds(ca: Path, tmp_path: Path) -> None:
    df = tmp_path / "ctx" / "Dockerfile"
    df.parent.mkdir()
    df.write_text("FROM debian:bookworm-slim\n")
    engine: Any = Engine()
    built = build.custom_agent(df, client=engine)  # the Docker backend's path
    assert agent_image.resolve("", str(df)) == agent_image.AgentImage(built, True)
    df.write_text("FROM debian:bookworm-slim\nRUN true\n")  # new content, new tag
    assert agent_image.resolve("", str(df)).tag != built


def test_a_recorded_root_is_found_by_its_tag(tmp_path: Path) -> None:
    root = tmp_path / "root-0123456789abcdef.erofs"
    root.write_bytes(b"erofs")
    assert rootfs.cached(tmp_path, "bot-bottle/agent-claude:1") is None
    rootfs._record(tmp_path, "bot-bottle/agent-claude:1", root)
    assert rootfs.cached(tmp_path, "bot-bottle/agent-claude:1") == root
    assert rootfs.cached(tmp_path, "bot-bottle/agent-claude:2") is None
    root.unlink()  # the pointer outlives its root: not found
    assert rootfs.cached(tmp_path, "bot-bottle/agent-claude:1") is None


def test_a_pointer_never_leads_out_of_the_cache(tmp_path: Path) -> None:
    outside = tmp_path / "root-elsewhere.erofs"
    outside.write_bytes(b"x")
    cache = tmp_path / "cache"
    cache.mkdir()
    rootfs.pointer(cache, "t").write_text("../root-elsewhere.erofs\n")
    assert rootfs.cached(cache, "t") is None


def test_a_made_root_needs_no_engine(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose roots are made launches without Docker: neither the image build
    nor the engine is asked for a content-addressed tag with a recorded root."""

    def no_engine(*_a: object, **_k: object) -> object:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(agent_image, "ensure_image", no_engine)
    monkeypatch.setattr(rootfs, "cached_by_id", no_engine)
    tag = agent_image.resolve("claude").tag
    root = tmp_path / "root-00000000000000aa.erofs"
    root.write_bytes(b"erofs")
    rootfs._record(tmp_path, tag, root)
    got = ensure_root_for("claude", cache=tmp_path, progress=lambda _l: None)
    assert (got.path, got.built) == (root, False) and tag in got.name
    assert cached_root_for("claude", cache=tmp_path) == root


def test_cached_root_of_an_unrecorded_image_asks_the_engine_and_never_builds(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def by_id(cache: Path, tag: str) -> Path | None:
        asked.append(tag)
        return None

    def no_build(*_a: object, **_k: object) -> object:
        raise AssertionError("a build was started")

    monkeypatch.setattr(rootfs, "cached_by_id", by_id)
    monkeypatch.setattr(rootfs, "ensure", no_build)
    monkeypatch.setattr(agent_image, "ensure_image", no_build)
    assert cached_root_for("python:3.11", cache=tmp_path) is None
    assert cached_root_for("codex", cache=tmp_path) is None
    assert asked == ["python:3.11", agent_image.resolve("codex").tag]


def test_cached_by_id_is_none_for_an_image_the_engine_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Lacking:
        class images:  # the SDK's attribute name
            @staticmethod
            def get(tag: str) -> object:
                raise docker.errors.ImageNotFound(tag)

    monkeypatch.setattr(rootfs, "connect", lambda **_k: Lacking())
    assert rootfs.cached_by_id(tmp_path, "python:3.11") is None


def test_ensure_root_is_the_general_image(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    def fake(image: str, dockerfile: str = "", *_a: object, **_k: object) -> store.Artefact:
        seen.append((image, dockerfile))
        return store.Artefact("root", Path("/r"), False)

    monkeypatch.setattr(store, "ensure_root_for", fake)
    store.ensure_root(progress=lambda _l: None)
    assert seen == [("general", "")]


def test_images_guest_refuses_an_unknown_image_before_any_work(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "images", "guest", "--image",
                        "python:3.11"], capture_output=True, text=True, check=False,
                       env={"PATH": "/usr/bin:/bin", "BOT_BOTTLE_HOME": str(tmp_path)})  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "general, claude, codex" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "cache").exists()
