"""MicroVM start-up (backend in progress): bare QEMU booting the guest kernel, against
bare bubblewrap running `true`, measured in the same run, one round of each in turn.

Rows (medians of -n rounds; each boot is CPU-heavy under TCG: keep -n small):
- bare bwrap ... true: the namespace baseline;
- qemu: kernel + initramfs to the boot marker, powered off (what `doctor` probes);
- qemu: to /bin/true on the root image (erofs on virtio-blk), exit status back;
- each with the accelerator the probe picked (KVM where it boots a guest, else TCG).

Needs the guest built (`bot-bottle images guest`). Start-up of a whole microVM bottle
comes when the backend runs bottles.

Run: python benchmarks/startup_microvm.py [-n 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from startup import bare_bwrap  # the same baseline as the other start-up rows

from bot_bottle.backends.microvm import accel, boot
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import cache_dir, ensure_boot, ensure_root


def timed(cfg: VmConfig, marker: str) -> float:
    t0 = time.perf_counter()
    b = boot.run(cfg, ProcessExecutor(), timeout=120, marker=marker)
    if b.marker_s is None or b.timed_out:
        raise SystemExit(f"boot failed: {b.tail(8)}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    n = ap.parse_args().n
    ex = ProcessExecutor()
    files, _ = ensure_boot(ex, progress=lambda _line: None)
    root = ensure_root(ex, progress=lambda _line: None).path
    picked = accel.chosen(accel.probe(files, ex, cache_dir()))
    if picked is None:
        raise SystemExit("no accelerator boots the guest here (`bot-bottle doctor`)")
    tsc = host_tsc_khz(Path("/proc/cpuinfo").read_text())
    probe = VmConfig(picked.name, files.kernel.vmlinuz, files.initramfs, tsc_khz=tsc)
    true = VmConfig(picked.name, files.kernel.vmlinuz, files.initramfs, root=root,
                    command=("/bin/true",), tsc_khz=tsc)  # fmt: skip
    samples: dict[str, list[float]] = {}
    for _ in range(n):
        samples.setdefault("bare bwrap ... true", []).append(bare_bwrap())
        samples.setdefault(f"qemu ({picked.name}): initramfs marker, exit", []).append(
            timed(probe, "reboot: Power down")
        )
        samples.setdefault(f"qemu ({picked.name}): /bin/true on the root, exit", []).append(
            timed(true, "reboot: Power down")
        )
    rows = {name: statistics.median(v) for name, v in samples.items()}
    bare = rows["bare bwrap ... true"]
    print(f"median of {n} rounds; accelerator {picked.name} ({picked.detail})")
    print(f"{'measurement':47} {'ms':>8} {'x bare bwrap':>13}")
    for name, secs in rows.items():
        print(f"{name:47} {secs * 1000:8.1f} {secs / bare:13.1f}")


if __name__ == "__main__":
    sys.exit(main())
