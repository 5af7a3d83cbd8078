"""The guest initramfs: busybox (static), the kernel's virtio modules and bot-bottle's
init (`init.sh`, `stage2.sh`), as a gzip'd cpio named by the digest of its content."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from bot_bottle.errors import BackendUnavailable
from bot_bottle.images.guest import cpio
from bot_bottle.images.guest.kernel import Kernel

HERE = Path(__file__).resolve().parent
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def busybox() -> Path:
    """The host's static busybox (`busybox-static`): the dynamic one would need the
    host's libc inside the initramfs."""
    for c in BUSYBOX_CANDIDATES:
        p = Path(c)
        if p.is_file() and _static(p.read_bytes()[: 4096 * 4]):
            return p
    raise BackendUnavailable("no static busybox on this host", "apt-get install busybox-static")


def _static(head: bytes) -> bool:
    # A dynamic ELF names its interpreter (PT_INTERP) near the start of the file.
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head


def entries(kernel: Kernel, busybox_bytes: bytes) -> list[cpio.Entry]:
    out = [cpio.directory(d) for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc",
                                       "sys", "newroot")]  # fmt: skip
    out.append(cpio.char_device("dev/console", 5, 1))
    out.append(cpio.file("bin/busybox", busybox_bytes, 0o755))
    out.append(cpio.file("init", (HERE / "init.sh").read_bytes(), 0o755))
    out.append(cpio.file("etc/stage2.sh", (HERE / "stage2.sh").read_bytes(), 0o755))
    out.append(cpio.file("etc/bottle.sh", (HERE / "bottle.sh").read_bytes(), 0o755))
    out.append(cpio.file("etc/mux.py", (HERE / "mux.py").read_bytes()))
    out.append(cpio.file("etc/exec_service.py", (HERE / "exec_service.py").read_bytes()))
    out.append(cpio.file("etc/confine.py", (HERE / "confine.py").read_bytes()))
    names = [m.name.removesuffix(".ko") for m in kernel.modules]
    out.append(cpio.file("etc/modules.order", ("\n".join(names) + "\n").encode()))
    for m in kernel.modules:
        out.append(cpio.file(f"lib/modules/{m.name}", m.read_bytes()))
    return out


def target_for(cache: Path, kernel: Kernel) -> tuple[Path, bytes]:
    """Where the initramfs for `kernel` and this host's busybox lives, and its cpio."""
    archive = cpio.archive(entries(kernel, busybox().read_bytes()))
    key = hashlib.sha256(archive).hexdigest()[:16]
    return cache / f"initramfs-{key}.cpio.gz", archive


def ensure(cache: Path, kernel: Kernel) -> tuple[Path, bool]:
    """The cached initramfs for `kernel` and this host's busybox; returns (path, built)."""
    target, archive = target_for(cache, kernel)
    if target.is_file():
        return target, False
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(archive)
    os.replace(tmp, target)
    return target, True
