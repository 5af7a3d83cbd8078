"""A share's host side against a guest whose kernel is the attacker's: the agent runs
unprivileged, but a guest kernel exploit would give it root in the guest and so every
request virtiofsd accepts. virtiofsd runs as root on the host, so it must refuse what
would raise privileges on the host: set-id files and device nodes in HOME or the
workspace (a host user running or opening them would act as root)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot_bottle.backends.microvm import boot, virtiofs
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

# Run as root in the guest: what a guest-kernel compromise would allow.
SCRIPT = """
mkdir -p /tmp/m && mount -t virtiofs ws /tmp/m || { echo "mount failed"; exit 3; }
cp /bin/true /tmp/m/suid && chmod 4755 /tmp/m/suid; echo "chmod-suid rc=$?"
cp /bin/true /tmp/m/sgid && chmod 2755 /tmp/m/sgid; echo "chmod-sgid rc=$?"
python3 -c 'import os; os.close(os.open("/tmp/m/created-suid", os.O_CREAT | os.O_WRONLY, 0o4755))'; echo "create-suid rc=$?"
mknod /tmp/m/disk b 8 0; echo "mknod-block rc=$?"
mknod /tmp/m/mem c 1 1; echo "mknod-char rc=$?"
echo plain > /tmp/m/plain; echo "plain rc=$?"
umount /tmp/m
echo done-probing
"""


@pytest.fixture(scope="module")
def probed(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[boot.Boot, Path]:
    work = tmp_path_factory.mktemp("vfs")
    share = work / "share"
    share.mkdir()
    vm = work / "vm"
    vm.mkdir(mode=0o700)
    with virtiofs.serving(ProcessExecutor(), vm, "ws", share) as fd:
        cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                       root=Path(root_image), command=("sh", "-c", SCRIPT), shares=(("ws", fd),),
                       tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()))  # fmt: skip
        booted = boot.run(cfg, ProcessExecutor(), timeout=120, marker="done-probing",
                          fds={"ws": fd})  # fmt: skip
    return booted, share


def test_the_share_works(probed: tuple[boot.Boot, Path]) -> None:
    booted, share = probed
    assert "done-probing" in booted.output, booted.output[-2000:]
    assert (share / "plain").read_text() == "plain\n"


def test_no_set_id_file_reaches_the_host(probed: tuple[boot.Boot, Path]) -> None:
    booted, share = probed
    for name in ("suid", "sgid", "created-suid"):
        p = share / name
        if p.exists():
            assert not p.stat().st_mode & (stat.S_ISUID | stat.S_ISGID), (
                name,
                oct(p.stat().st_mode),
                booted.output[-1500:],
            )


def test_no_device_node_reaches_the_host(probed: tuple[boot.Boot, Path]) -> None:
    booted, share = probed
    for name in ("disk", "mem"):
        p = share / name
        assert not (p.exists() and (p.is_block_device() or p.is_char_device())), (
            name,
            booted.output[-1500:],
        )
