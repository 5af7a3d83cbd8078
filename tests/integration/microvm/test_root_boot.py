"""One real boot of the guest on its root image (the Docker agent image as erofs): the
command runs under the guest's own kernel, its exit status comes back, the guest has
no network device at all, and the root is read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

SCRIPT = """
echo "net: $(ls /sys/class/net | tr '\\n' ' ')"
echo "virtio ids: $(cat /sys/bus/virtio/devices/*/device | tr '\\n' ' ')"
if touch /planted 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi
echo "kernel: $(uname -r)"
python3 -c 'import sys; print("python says", "hi there"); sys.exit(7)'
"""


@pytest.fixture(scope="module")
def booted(boot_files: BootFiles, root_image: os.PathLike[str]) -> boot.Boot:
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=Path(root_image), command=("sh", "-c", SCRIPT),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()))  # fmt: skip
    return boot.run(cfg, ProcessExecutor(), timeout=90, marker="python says")


def test_command_runs_and_its_exit_status_comes_back(booted: boot.Boot) -> None:
    assert booted.marker_s is not None, booted.output[-2000:]
    assert "python says hi there" in booted.output
    assert booted.guest_exit == 7
    assert not booted.timed_out and booted.returncode == 0


def test_guest_runs_its_own_kernel(booted: boot.Boot, boot_files: BootFiles) -> None:
    assert f"kernel: {boot_files.kernel.release}" in booted.output
    assert boot_files.kernel.release != os.uname().release


def test_guest_has_no_network_device(booted: boot.Boot) -> None:
    """No interface but loopback, and no virtio network device on the bus at all (its
    driver is not even in the guest: an interface list alone would miss a NIC)."""
    assert "net: lo \n" in booted.output, booted.output[-2000:]
    ids = next(ln for ln in booted.output.splitlines() if ln.startswith("virtio ids: "))
    assert "0x0002" in ids  # the root disk: the listing works
    assert "0x0001" not in ids, ids  # virtio device id 1 is a network card


def test_root_is_read_only(booted: boot.Boot) -> None:
    assert "root: read-only" in booted.output
