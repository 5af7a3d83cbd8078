"""A guest writing to its serial console without end (a guest kernel the attacker owns
can): the host's console log stays bounded, and its end, where the status line is,
is kept. Before `capped_log`, QEMU wrote the console straight into the log file, which
grew as large as the guest liked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot_bottle.backends.microvm import capped_log
from bot_bottle.backends.microvm.qemu import VmConfig, argv, host_tsc_khz
from bot_bottle.executor import Cmd, ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

FLOOD = 3 << 20
CAP = 1 << 20
TAIL = 4 << 10
# Run as root in the guest: the whole flood on the console, then a last word.
SCRIPT = f"head -c {FLOOD} /dev/zero | tr '\\0' A; echo; echo flood-over"


def test_a_console_flood_is_cut_and_the_end_kept(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path: Path
) -> None:
    log = tmp_path / "console.log"
    with capped_log.socket_into(log, cap=CAP, tail=TAIL) as rec:
        cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                       root=Path(root_image), command=("sh", "-c", SCRIPT), console_fd=rec.fd,
                       tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()))  # fmt: skip
        proc = ProcessExecutor().spawn(
            Cmd(argv(cfg), env={"PATH": "/usr/bin:/bin"}, hand_fds={"console": rec.fd}),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out, _ = proc.communicate(timeout=240)  # type: ignore[attr-defined]
    data = log.read_bytes()
    said = f"QEMU {proc.returncode}: {out[-500:]!r}; log {len(data)} bytes, ends {data[-300:]!r}"
    assert b"flood-over" in data[-TAIL:], said
    assert b"bot-bottle-guest: exit 0" in data[-TAIL:], said
    assert len(data) <= CAP + TAIL + 200, said
    assert b"bytes not kept" in data, said
    print(f"log of {len(data):,} bytes for a flood of {FLOOD:,}")
