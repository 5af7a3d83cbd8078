"""Which accelerator boots a guest here, found by booting one, not by looking for
/dev/kvm: on a host whose KVM is itself nested or paravirtual (`kvm_pvm`) the device
exists and opens, yet Debian's kernel never reaches userspace under it. KVM gets a
short deadline (a working KVM boots this guest in well under a second); TCG, software
emulation, is the fallback that works wherever QEMU does.

The answer is cached (`cache/microvm-accel.json`) under a key of everything it
depends on (QEMU's binary, the boot files, the host kernel, /dev/kvm), so `doctor`
pays the boots once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.qemu import QEMU, VmConfig, host_tsc_khz
from bot_bottle.executor import Executor
from bot_bottle.images.guest.store import BootFiles

KVM_DEVICE = Path("/dev/kvm")
KVM_TIMEOUT = 8.0
TCG_TIMEOUT = 60.0


@dataclass(frozen=True)
class Accel:
    """One accelerator's verdict: whether the probe guest booted, in how long, and why
    not (QEMU's last words or the deadline) when it did not."""

    name: str
    works: bool
    detail: str
    seconds: float | None = None


def probe_one(name: str, files: BootFiles, executor: Executor, timeout: float) -> Accel:
    if name == "kvm" and not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return Accel(name, False, f"{KVM_DEVICE} is missing or not usable by this user")
    tsc = host_tsc_khz(_read("/proc/cpuinfo"))
    cfg = VmConfig(name, files.kernel.vmlinuz, files.initramfs, memory_mb=256, tsc_khz=tsc)
    b = boot.run(cfg, executor, timeout=timeout)
    if b.marker_s is not None:
        return Accel(name, True, f"booted to the guest marker in {b.marker_s:.2f} s", b.marker_s)
    said = b.tail() or "no output"
    if b.timed_out:
        hint = ""
        if name == "kvm" and Path("/sys/module/kvm_pvm").is_dir():
            hint = "; this host's KVM is kvm_pvm (nested, paravirtual), which Debian's kernels do not boot under"
        return Accel(
            name, False, f"no boot marker within {timeout:g} s (QEMU's last output: {said}){hint}"
        )
    return Accel(name, False, f"QEMU exited {b.returncode} before the marker: {said}")


def probe(files: BootFiles, executor: Executor, cache: Path, *, fresh: bool = False) -> list[Accel]:
    """KVM, then TCG: each booted once (or read from the cache)."""
    key = _key(files)
    path = cache / "microvm-accel.json"
    if not fresh:
        try:
            data = json.loads(path.read_text())
            if data.get("key") == key:
                return [Accel(**a) for a in data["accels"]]
        except (OSError, ValueError, TypeError, KeyError):
            pass
    out = [probe_one("kvm", files, executor, KVM_TIMEOUT),
           probe_one("tcg", files, executor, TCG_TIMEOUT)]  # fmt: skip
    if chosen(out) is None:
        # Nothing booted: kept, it would refuse every launch until the key changed, and
        # the cause may have passed (a boot file pruned a moment, a host under load).
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "accels": [asdict(a) for a in out]}))
    os.replace(tmp, path)
    return out


def chosen(accels: list[Accel]) -> Accel | None:
    """The accelerator a VM would use: the first that works."""
    return next((a for a in accels if a.works), None)


def _key(files: BootFiles) -> str:
    qemu = shutil.which(QEMU) or QEMU
    parts = [qemu, _stat(qemu), str(files.kernel.directory), str(files.initramfs),
             os.uname().release, _stat(str(KVM_DEVICE))]  # fmt: skip
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _stat(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_mode:o}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
