"""`bot-bottle images bootstrap`: make `debian:bookworm-slim` from Debian packages.

For hosts with no registry: debootstrap a minbase root from the host's own apt mirror,
trim it, and `docker import` it under the tag ordinary Dockerfiles start `FROM`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.docker_engine import connect, engine_errors
from bot_bottle.errors import BackendUnavailable
from bot_bottle.executor import Cmd, Executor, ProcessExecutor
from bot_bottle.images.apt_sources import host_sources, mirror_for, suite_sources

BASE_TAG = "debian:bookworm-slim"
SUITE = "bookworm"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Trimmed from the root like the official slim image does: docs, manuals and caches
# are dead weight in every layer built on top.
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt/archives",
         "var/lib/apt/lists")  # fmt: skip

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BootstrapPlan:
    """What a bootstrap will run: the debootstrap command and the apt lines baked in."""

    debootstrap: Cmd
    sources_list: str
    mirror: str
    https: bool


def plan(rootfs: Path, *, mirror: str | None = None, apt_root: Path = Path("/")) -> BootstrapPlan:
    """Derive the mirror from the host's apt configuration (unless given) and the argv."""
    sources = suite_sources(host_sources(apt_root), SUITE)
    mirror = mirror or mirror_for(sources, SUITE)
    lines = [s.line() for s in sources] or [f"deb {mirror} {SUITE} main"]
    https = mirror.startswith("https:")
    argv = ["debootstrap", "--variant=minbase"]
    if https:
        argv.append("--include=ca-certificates")
    argv += [SUITE, str(rootfs), mirror]
    env = {"PATH": PATH_ENV, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    return BootstrapPlan(Cmd(tuple(argv), env=env), "\n".join(lines) + "\n", mirror, https)


def base_exists() -> bool:
    from bot_bottle.images.build import image_exists

    return image_exists(BASE_TAG)


def bootstrap(
    *,
    progress: Progress = print,
    detail: Progress | None = None,
    mirror: str | None = None,
    ca_bundle: Path | None = None,
    force: bool = False,
    executor: Executor | None = None,
) -> str:
    """Make `debian:bookworm-slim` unless it exists; returns what happened, in a line.
    Each phase is a `progress` heading; debootstrap's own lines are `detail`."""
    if not force and base_exists():
        return f"{BASE_TAG} already present (use --force to rebuild it)"
    if os.geteuid() != 0:
        raise BackendUnavailable("debootstrap needs root", "sudo bot-bottle images bootstrap")
    if shutil.which("debootstrap") is None:
        raise BackendUnavailable("debootstrap is not installed", "apt-get install debootstrap")
    executor = executor or ProcessExecutor()
    workdir = Path(tempfile.mkdtemp(prefix="bot-bottle-rootfs-", dir="/var/tmp"))
    rootfs = workdir / "root"
    try:
        p = plan(rootfs, mirror=mirror)
        progress(f"debootstrap {SUITE} (minbase) from {p.mirror}")
        _stream(executor, p.debootstrap, detail or progress)
        _finish_rootfs(rootfs, p, ca_bundle)
        progress(f"importing into Docker as {BASE_TAG}")
        image_id = _import(rootfs, p.mirror)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return f"{BASE_TAG} created ({image_id[:19]})"


def _stream(executor: Executor, cmd: Cmd, progress: Progress) -> None:
    proc = executor.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail: list[str] = []
    assert proc.stdout is not None or proc.returncode is not None
    for raw in proc.stdout or ():
        line = raw.decode(errors="replace").rstrip()
        tail = [*tail[-19:], line]
        if line.startswith(
            (
                "I: Retrieving",
                "I: Validating",
                "I: Extracting",
                "I: Unpacking",
                "I: Configuring",
                "I: Installing",
                "I: Base system",
                "E:",
                "W:",
            )
        ):
            progress(line)
    if proc.wait() != 0:
        raise BackendUnavailable(
            f"{cmd.argv[0]} failed (exit {proc.returncode}):\n" + "\n".join(tail),
            "check that the mirror in your apt sources is reachable (`apt-get update`)",
        )


def _finish_rootfs(rootfs: Path, p: BootstrapPlan, ca_bundle: Path | None) -> None:
    (rootfs / "etc/apt/sources.list").write_text(p.sources_list)
    for rel in _TRIM:
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                elif child.name != "lock":
                    child.unlink(missing_ok=True)
    if ca_bundle is not None and p.https:
        # An https mirror behind an intercepting proxy: apt inside builds needs the CA.
        shutil.copyfile(ca_bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")


def _import(rootfs: Path, mirror: str) -> str:
    client = connect(timeout=600)
    tar_path = rootfs.parent / "rootfs.tar"
    with tarfile.open(tar_path, mode="w") as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name)
    changes = [f"ENV PATH={PATH_ENV}", 'CMD ["bash"]',
               f"LABEL org.bot-bottle.bootstrap-mirror={mirror}"]  # fmt: skip
    repo, tag = BASE_TAG.split(":")
    with engine_errors(f"importing {BASE_TAG}"):
        client.api.import_image_from_file(str(tar_path), repository=repo, tag=tag, changes=changes)
        return str(client.images.get(BASE_TAG).id)
