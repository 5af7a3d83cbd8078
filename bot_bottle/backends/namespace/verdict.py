"""The namespace probe's verdict, kept so a launch does not run bwrap twice.

Whether bubblewrap can build a sandbox here is tested for real (`NamespaceBackend.probe`
runs one), which costs a launch a process and ~15 ms. A success is kept for
`VERDICT_TTL` under a key of what the answer depends on: the boot, the bwrap binary,
the user-namespace sysctls, and the launcher's own uid, namespaces and seccomp state
(a launcher in another container or user namespace gets a key of its own). A failure
is never kept: it is tested again each time. Were the host to change in a way the key
misses, the sandbox's own bwrap fails the launch, before the agent runs, with bwrap's
error: the cache never opens anything.

The same verdict serves `doctor`, as the Docker backend's runtime verdict does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

VERDICT_TTL = 600.0  # seconds
SYSCTLS = (
    "/proc/sys/kernel/random/boot_id",
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
)
NAMESPACES = ("user", "mnt", "pid", "net")


def key(bwrap: str, argv: Sequence[str]) -> str:
    """A digest of everything the probe's answer depends on (and the probe itself)."""
    parts = [os.path.realpath(bwrap), *argv, f"uid {os.getuid()} euid {os.geteuid()}"]
    with contextlib.suppress(OSError):
        st = os.stat(os.path.realpath(bwrap))
        parts.append(f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_mode} {st.st_uid}")
    for path in SYSCTLS:
        try:
            parts.append(f"{path}={Path(path).read_text().strip()}")
        except OSError:
            parts.append(f"{path} absent")
    for ns in NAMESPACES:
        with contextlib.suppress(OSError):
            parts.append(os.readlink(f"/proc/self/ns/{ns}"))
    with contextlib.suppress(OSError):
        status = Path("/proc/self/status").read_text().splitlines()
        parts += [ln for ln in status if ln.startswith(("Seccomp", "NoNewPrivs", "CapEff"))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def known_good(path: Path, probe_key: str, now: float | None = None) -> bool:
    """Whether a probe with `probe_key` succeeded here less than `VERDICT_TTL` ago."""
    try:
        raw = json.loads(path.read_text())
        at = float(raw["ok_at"])
        same = raw["key"] == probe_key
    except (OSError, ValueError, KeyError, TypeError):
        return False
    age = (time.time() if now is None else now) - at
    return same and 0 <= age < VERDICT_TTL


def remember(path: Path, probe_key: str) -> None:
    """Keep a success (0600, written whole); a failure to write only costs a probe."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"key": probe_key, "ok_at": time.time()}, f)
        os.replace(tmp, path)
