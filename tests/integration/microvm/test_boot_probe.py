"""The accelerator probe boots a real guest: TCG reaches the marker; KVM either does
or says why not (on these machines it cannot: `kvm_pvm`). No mocks: QEMU runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bot_bottle.backends.microvm import accel
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles


def test_tcg_boots_the_guest_to_its_marker(boot_files: BootFiles, tmp_path: Path) -> None:
    tcg = accel.probe_one("tcg", boot_files, ProcessExecutor(), accel.TCG_TIMEOUT)
    assert tcg.works, tcg.detail
    assert tcg.seconds is not None and tcg.seconds < accel.TCG_TIMEOUT


def test_kvm_verdict_is_a_real_boot_with_a_reason(boot_files: BootFiles) -> None:
    kvm = accel.probe_one("kvm", boot_files, ProcessExecutor(), 4.0)
    if kvm.works:
        assert kvm.seconds is not None
    else:
        assert kvm.detail and ("marker" in kvm.detail or "/dev/kvm" in kvm.detail), kvm.detail


def test_probe_caches_its_answer(boot_files: BootFiles, tmp_path: Path) -> None:
    """`doctor` must not pay the boots twice: a cached answer is read, not re-probed
    (a bogus cached verdict with the right key comes back as is)."""
    key = accel._key(boot_files)
    fake = accel.Accel("tcg", True, "cached", 1.0)
    cached = {"key": key, "accels": [dataclasses.asdict(fake)]}
    (tmp_path / "microvm-accel.json").write_text(json.dumps(cached))
    assert accel.probe(boot_files, ProcessExecutor(), tmp_path) == [fake]


def test_images_guest_lists_the_cached_boot_files(boot_files: BootFiles) -> None:
    """`bot-bottle images guest` finds what the fixture built (same cache), builds nothing."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "bot_bottle", "images", "guest", "--boot-only",
                        "--json"], capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["built"] for row in rows] == [False, False]
    assert rows[0]["path"] == str(boot_files.kernel.vmlinuz)
    assert rows[1]["path"] == str(boot_files.initramfs)
