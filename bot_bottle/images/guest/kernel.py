"""The guest kernel: Debian's cloud kernel, fetched as a `.deb` with `apt-get download`
and unpacked with `dpkg-deb -x` (never installed on the host).

The cloud flavour is small and boots fast on `-M microvm`, but builds its virtio
drivers as modules, so the initramfs must load them: `modules_for` picks the few the
guest needs and their dependencies, read from each module's own `.modinfo`. The cache
directory is named after the `.deb`'s SHA256 as the apt index states it, so a cached
kernel is found without any download and a download is checked against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import BackendUnavailable
from bot_bottle.executor import Cmd, Executor

META_PACKAGE = "linux-image-cloud-amd64"
# virtio-mmio is the transport of `-M microvm`; blk carries the root image, console the
# host channel and the agent's terminal; erofs reads the root, overlay gives it a
# writable layer; virtiofs shares HOME and the workspace with the host.
WANTED_MODULES = ("virtio_mmio", "virtio_blk", "virtio_console", "erofs", "overlay", "virtiofs")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class KernelPackage:
    """The `.deb` apt would fetch: its name, version and SHA256 (from the apt index)."""

    name: str
    version: str
    sha256: str

    @property
    def key(self) -> str:
        """The cache key: the package and the modules staged from it."""
        modules = hashlib.sha256(",".join(WANTED_MODULES).encode()).hexdigest()[:8]
        return f"{self.sha256[:16]}-{modules}"


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel in the cache: the image, its release and the modules the
    initramfs loads, in load order."""

    directory: Path
    release: str

    @property
    def vmlinuz(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def modules(self) -> list[Path]:
        order = (self.directory / "modules.order").read_text().split()
        return [self.directory / "modules" / f"{m}.ko" for m in order]


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key not in out:
            out[key] = value.strip()
    return out


APT_LISTS = Path("/var/lib/apt/lists")


def resolve(
    executor: Executor, meta: str = META_PACKAGE, cache: Path | None = None
) -> KernelPackage:
    """The concrete kernel package the meta package points at, from apt's local index.
    Asking apt takes about half a second; with `cache`, the answer is kept until apt's
    index changes (its directory's mtime: `apt-get update` replaces files in it)."""
    if cache is None:
        return _resolve(executor, meta)
    key = f"{meta}\0{_mtime(APT_LISTS)}"
    path = cache / "kernel-package.json"
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return KernelPackage(data["name"], data["version"], data["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    pkg = _resolve(executor, meta)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "name": pkg.name, "version": pkg.version,
                               "sha256": pkg.sha256}))  # fmt: skip
    os.replace(tmp, path)
    return pkg


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _resolve(executor: Executor, meta: str) -> KernelPackage:

    def show(pkg: str) -> dict[str, str]:
        r = executor.run(Cmd(("apt-cache", "show", "--no-all-versions", pkg)))
        if r.returncode != 0 or not r.stdout.strip():
            raise BackendUnavailable(f"apt knows no package {pkg}: {r.stderr.strip()}",
                                     "run `apt-get update` (Debian bookworm's main)")  # fmt: skip
        return _fields(r.stdout)

    depends = show(meta).get("Depends", "")
    m = re.match(r"(linux-image-[\w.+-]+)", depends)
    if m is None:
        raise BackendUnavailable(f"{meta} depends on no kernel image ({depends!r})",
                                 "check the apt sources")  # fmt: skip
    f = show(m.group(1))
    return KernelPackage(f["Package"], f["Version"], f["SHA256"])


def ensure(cache: Path, executor: Executor, progress: Progress = print) -> tuple[Kernel, bool]:
    """The cached kernel for the current package, fetched and unpacked if missing;
    returns (kernel, built)."""
    pkg = resolve(executor, cache=cache)
    target = cache / f"kernel-{pkg.key}"
    if (target / "release").is_file():
        return Kernel(target, (target / "release").read_text().strip()), False
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=cache) as tmp:
        work = Path(tmp)
        progress(f"kernel: apt-get download {pkg.name} {pkg.version}")
        r = executor.run(Cmd(("apt-get", "download", f"{pkg.name}={pkg.version}"), cwd=tmp))
        debs = sorted(work.glob("*.deb"))
        if r.returncode != 0 or not debs:
            raise BackendUnavailable(f"apt-get download {pkg.name} failed: {r.stderr.strip()}",
                                     "check that the apt mirror is reachable")  # fmt: skip
        if hashlib.sha256(debs[0].read_bytes()).hexdigest() != pkg.sha256:
            raise BackendUnavailable(f"{debs[0].name} does not match the apt index's SHA256",
                                     "run `apt-get update` and try again")  # fmt: skip
        progress(f"kernel: dpkg-deb -x {debs[0].name}")
        tree = work / "tree"
        r = executor.run(Cmd(("dpkg-deb", "-x", str(debs[0]), str(tree))))
        if r.returncode != 0:
            raise BackendUnavailable(f"dpkg-deb -x failed: {r.stderr.strip()}", "")
        staged = work / "kernel"
        release = _stage(tree, staged)
        try:
            os.replace(staged, target)  # whole or not at all: a crash leaves no half kernel
        except OSError:
            if not (target / "release").is_file():
                raise  # not a concurrent build that finished first

    progress(f"kernel: {release} ready")
    return Kernel(target, release), True


def _stage(tree: Path, out: Path) -> str:
    vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise BackendUnavailable("the kernel package holds no /boot/vmlinuz-*", "")
    release = vmlinuz[0].name.removeprefix("vmlinuz-")
    (out / "modules").mkdir(parents=True)
    shutil.copyfile(vmlinuz[0], out / "vmlinuz")
    shutil.copyfile(tree / "boot" / f"config-{release}", out / "config")
    index = {p.name.removesuffix(".ko"): p
             for p in (tree / "lib/modules" / release).rglob("*.ko")}  # fmt: skip
    order = modules_for(WANTED_MODULES, {n: depends_of(p.read_bytes()) for n, p in index.items()})
    for name in order:
        shutil.copyfile(index[name], out / "modules" / f"{name}.ko")
    (out / "modules.order").write_text("\n".join(order) + "\n")
    (out / "release").write_text(release + "\n")
    return release


def depends_of(ko: bytes) -> list[str]:
    """The `depends=` a module's `.modinfo` section names (what `modinfo -F depends`
    prints), read straight from the file: the host needs no kmod for it."""
    for field in ko.split(b"\0"):
        if field.startswith(b"depends="):
            return [d for d in field[8:].decode().split(",") if d]
    return []


def modules_for(wanted: tuple[str, ...], deps: dict[str, list[str]]) -> list[str]:
    """`wanted` and everything they depend on, each after its dependencies."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name not in deps:
            raise BackendUnavailable(f"the guest kernel has no module {name}", "")
        if name in path:
            raise BackendUnavailable(f"module dependency cycle: {' -> '.join(path)}", "")
        for d in deps[name]:
            visit(d, (*path, name))
        order.append(name)

    for w in wanted:
        visit(w, ())
    return order
