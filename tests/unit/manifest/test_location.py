"""Finding the manifest: `-f`, `$BOT_BOTTLE_MANIFEST`, else upward from the current
directory, stopping at the root, a mount boundary and $HOME, with a fix that fits."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.location import find_manifest, search_upward


def test_found_here_and_above(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_manifest(env={}, cwd=tmp_path) == tmp_path / "bot-bottle.yaml"
    assert find_manifest(env={}, cwd=deep) == tmp_path / "bot-bottle.yaml"


def test_the_nearest_wins(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text("")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bot-bottle.yaml").write_text("")
    assert find_manifest(env={}, cwd=tmp_path / "a") == tmp_path / "a" / "bot-bottle.yaml"


def test_stops_at_home(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text("")
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    found, stop = search_upward(home / "proj", str(home))
    assert found is None and stop == home
    with pytest.raises(ManifestError) as info:
        find_manifest(env={"HOME": str(home)}, cwd=home / "proj")
    assert f"up to {home}" in info.value.message and "bot-bottle init" in info.value.fix


def test_stops_at_a_mount_boundary() -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(shm.parent).st_dev:
        pytest.fail("this test needs /dev/shm mounted on its own filesystem (as Linux does)")
    with tempfile.TemporaryDirectory(dir=shm) as d:
        (Path(d) / "sub").mkdir()
        found, stop = search_upward(Path(d) / "sub")
    assert found is None and stop == shm  # never looked in /dev or /


def test_a_named_file_that_is_missing_gets_its_own_fix(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        find_manifest("nope.yaml", env={}, cwd=tmp_path)
    assert info.value.message == "no manifest at nope.yaml"
    assert "-f" in info.value.fix and "pass -f FILE" not in info.value.fix
    with pytest.raises(ManifestError) as info:
        find_manifest(env={"BOT_BOTTLE_MANIFEST": str(tmp_path / "x.yaml")}, cwd=tmp_path)
    assert "$BOT_BOTTLE_MANIFEST" in info.value.fix
