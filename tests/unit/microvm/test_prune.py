"""Which guest artefacts `gc` removes: only what no launch would use again, and nothing
when apt or the engine cannot say what is current."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot_bottle.images.guest import prune


def _cache(tmp_path: Path) -> Path:
    c = tmp_path / "microvm"
    for d in ("kernel-new", "kernel-old"):
        (c / d).mkdir(parents=True)
        (c / d / "release").write_text("6.1\n")
    (c / "kernel-tmpbuild").mkdir()  # a build in progress, or a killed one
    for f in ("initramfs-new.cpio.gz", "initramfs-old.cpio.gz", "root-cur.erofs",
              "root-old.erofs", "root-tag-cur", "root-tag-old", "kernel-package.json",
              "microvm-accel.json", "x.123.tmp"):  # fmt: skip
        (c / f).write_text("x")
    return c


def _names(found: list[prune.Stale]) -> set[str]:
    return {s.path.name for s in found}


def test_only_what_no_launch_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _cache(tmp_path)
    monkeypatch.setattr(
        prune, "_current_boot", lambda cache, ex: {"kernel-new", "initramfs-new.cpio.gz"}
    )
    monkeypatch.setattr(prune, "_current_roots", lambda cache: {"root-cur.erofs", "root-tag-cur"})
    found = prune.stale(c, None)  # type: ignore[arg-type]
    assert _names(found) == {
        "kernel-old",
        "initramfs-old.cpio.gz",
        "root-old.erofs",
        "root-tag-old",
    }
    prune.remove(found)
    assert sorted(p.name for p in c.iterdir()) == sorted(
        ["kernel-new", "kernel-tmpbuild", "initramfs-new.cpio.gz", "root-cur.erofs",
         "root-tag-cur", "kernel-package.json", "microvm-accel.json", "x.123.tmp"])  # fmt: skip


def test_old_temporaries_go_young_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _cache(tmp_path)
    monkeypatch.setattr(prune, "_current_boot", lambda cache, ex: None)
    monkeypatch.setattr(prune, "_current_roots", lambda cache: None)
    assert _names(prune.stale(c, None)) == set()  # type: ignore[arg-type]
    old = time.time() - prune.STALE_TEMP_S - 60
    for name in ("kernel-tmpbuild", "x.123.tmp"):
        os.utime(c / name, (old, old))
    assert _names(prune.stale(c, None)) == {"kernel-tmpbuild", "x.123.tmp"}  # type: ignore[arg-type]


def test_nothing_is_removed_on_a_guess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """apt and the engine both unable to answer: every kernel, initramfs and root stays."""
    c = _cache(tmp_path)
    monkeypatch.setattr(prune, "_current_boot", lambda cache, ex: None)
    monkeypatch.setattr(prune, "_current_roots", lambda cache: None)
    assert prune.stale(c, None) == []  # type: ignore[arg-type]
