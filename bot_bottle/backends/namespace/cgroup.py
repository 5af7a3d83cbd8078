"""A namespace bottle's cgroup: how `resources` hold without a container engine.

bubblewrap has no resource limits of its own, so the launcher puts the sandbox in a
cgroup it made for the bottle (`bot-bottle-SLUG`), with `cpus` as a CFS quota, `memory`
as a hard limit (no swap on top) and the pid limit the Docker backend uses. Where it
may not make one, a bottle that declares `resources` is refused, field by field: a
limit is never silently dropped.

Where a cgroup can be made:
- cgroup v2 (the unified tree, Debian 12's default), root launcher: under
  `/sys/fs/cgroup/bot-bottle/`, as Docker's cgroupfs driver does (in a container,
  whose cgroup root is its own, as below);
- cgroup v2, unprivileged: only in a cgroup delegated to the user (one they own,
  e.g. under `systemd-run --user --scope -p Delegate=yes bot-bottle run ...`). The
  launcher moves itself to a leaf (`bot-bottle-launcher`) first, since a v2 cgroup
  with processes cannot hand controllers to its children;
- cgroup v1 (hybrid hosts, like the machines this was built on): beside the
  launcher's own cgroup in each controller's hierarchy, where writable (root).
The bottle sees its own cgroup read-only at /sys/fs/cgroup, as in a container, so
runtimes that size themselves by cpu.max or memory.max find the limits.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.resources import parse_memory

ROOT = Path("/sys/fs/cgroup")
SELF = Path("/proc/self/cgroup")
PERIOD_US = 100_000
PIDS_MAX = 4096  # as the Docker backend's pids_limit
PREFIX = "bot-bottle-"
LAUNCHER_LEAF = "bot-bottle-launcher"
FIX = (
    "use the Docker backend (`backend: docker` or `--backend docker`), remove the field, "
    "or let bot-bottle make cgroups: run it as root, or in a delegated cgroup "
    "(`systemd-run --user --scope -p Delegate=yes bot-bottle run ...`)"
)


@dataclass(frozen=True)
class Limits:
    """The limits a bottle asked for: CPUs (a fraction of one CPU's time allowed) and
    memory in bytes."""

    cpus: float | None = None
    memory: int | None = None

    @classmethod
    def of(cls, cpus: float | None, memory: str | None) -> Limits:
        return cls(cpus, parse_memory(memory) if memory else None)

    @property
    def any(self) -> bool:
        return self.cpus is not None or self.memory is not None

    @property
    def quota_us(self) -> int:
        return max(1000, round((self.cpus or 0) * PERIOD_US))


@dataclass(frozen=True)
class Step:
    """One write to the cgroup filesystem: `mkdir` a directory, `write` a value to a
    file (`write-if-there`: where the kernel has the file), or `adopt` (move every
    process of `path`'s cgroup.procs into `value`'s)."""

    op: str
    path: Path
    value: str = ""


@dataclass(frozen=True)
class Cgroup:
    """One bottle's cgroup: the steps that make it, its directories (one on v2, one per
    controller on v1) and where the bottle sees each of them."""

    version: int
    steps: tuple[Step, ...]
    dirs: tuple[Path, ...]
    views: tuple[str, ...]  # bottle paths of `dirs`, in the same order

    @property
    def procs(self) -> tuple[Path, ...]:
        return tuple(d / "cgroup.procs" for d in self.dirs)

    def create(self) -> None:
        """Make the cgroup and set its limits (again, if it is there already)."""
        for s in self.steps:
            if s.op == "mkdir":
                s.path.mkdir(exist_ok=True)
            elif s.op == "adopt":
                for pid in s.path.read_text().split():
                    with contextlib.suppress(ProcessLookupError):  # gone meanwhile
                        Path(s.value).write_text(pid)
            elif s.op == "write" or s.path.exists():
                s.path.write_text(s.value)

    def remove(self, wait: float = 2.0) -> None:
        """Remove the bottle's directories once their processes are gone. The sandbox's
        last processes die with its PID namespace just after the launcher's child
        returns, so this waits for that (polls, up to `wait` s); a cgroup still in use
        by another command of the same bottle stays for the last one to remove."""
        deadline = time.monotonic() + wait
        delay = 0.005
        for d in self.dirs:
            while _read(d / "cgroup.procs").strip() and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            with contextlib.suppress(OSError):
                d.rmdir()

    def enter(self, argv: Sequence[str]) -> tuple[str, ...]:
        """`argv` started inside the cgroup: a shell moves itself in, then execs it (so
        the sandbox, and all it forks, is in there from its first instruction)."""
        script = (
            'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        )
        return ("/bin/sh", "-c", script, "bot-bottle-cgroup", *map(str, self.procs), "--", *argv)


def for_bottle(slug: str, cpus: float | None, memory: str | None) -> Cgroup | None:
    """The cgroup that enforces a bottle's `resources`, None without any; a limit this
    host cannot enforce is a `ManifestError` naming the field, never ignored."""
    limits = Limits.of(cpus, memory)
    if not limits.any:
        return None
    host = os.cpu_count() or 1
    if limits.cpus is not None and limits.cpus > host:  # a quota above it limits nothing
        raise ManifestError(f"{limits.cpus:g} is more than this host's {host} CPUs",
                            "resources.cpus", f"lower `resources.cpus` to at most {host}")  # fmt: skip
    found = plan(slug, limits)
    if isinstance(found, str):
        raise ManifestError(found, fix=FIX)
    return found


@contextlib.contextmanager
def held(group: Cgroup | None) -> Iterator[Cgroup | None]:
    """`group`, made, while a command runs in it; removed after (by the last command)."""
    try:
        if group is not None:
            group.create()
    except OSError as e:
        raise ManifestError(
            f"resources: the namespace backend could not make the bottle's cgroup: {e}", fix=FIX
        ) from e
    try:
        yield group
    finally:
        if group is not None:
            group.remove()


def plan(
    slug: str,
    limits: Limits,
    *,
    root: Path = ROOT,
    self_cgroup: Path = SELF,
    euid: int | None = None,
    writable: Callable[[Path], bool] = lambda p: os.access(p, os.W_OK),
) -> Cgroup | str:
    """The cgroup that enforces `limits` for bottle `slug` on this host, or why none can
    (a message naming the manifest field it is about)."""
    euid = os.geteuid() if euid is None else euid
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError as e:
        return _refusal(limits, f"cannot read {self_cgroup} ({e.strerror})")
    if (root / "cgroup.controllers").exists():
        return _v2(slug, limits, root, lines, euid, writable)
    return _v1(slug, limits, root, lines, writable)


def _refusal(limits: Limits, why: str, fields: Sequence[str] | None = None) -> str:
    named = fields or [f for f in ("cpus", "memory") if getattr(limits, f) is not None]
    what = " and ".join(f"resources.{f}" for f in named)
    return f"{what}: the namespace backend cannot enforce this here: {why}"


def _needed(limits: Limits) -> dict[str, str]:
    """Controller name -> the field that needs it."""
    out = {}
    if limits.cpus is not None:
        out["cpu"] = "cpus"
    if limits.memory is not None:
        out["memory"] = "memory"
    return out


def _v2(
    slug: str,
    limits: Limits,
    root: Path,
    lines: list[str],
    euid: int,
    writable: Callable[[Path], bool],
) -> Cgroup | str:
    own = next((ln[3:] for ln in lines if ln.startswith("0::")), None)
    if own is None:
        return _refusal(limits, "this process is in no cgroup v2")
    steps: list[Step] = []
    # The real root cgroup has no cgroup.type and may hold processes beside children; a
    # container's (a cgroup namespace's) root has one, and is treated as delegated.
    if euid == 0 and not (root / "cgroup.type").exists():
        parent = root
        base = root / "bot-bottle"
    else:
        parent = root / own.lstrip("/")
        if parent.name == LAUNCHER_LEAF:  # moved there by an earlier bottle of ours
            parent = parent.parent
        if not all(writable(p) for p in (parent, parent / "cgroup.subtree_control")):
            return _refusal(limits, f"cgroup v2 is not delegated to you ({parent} is not yours)")
        base = parent
    available = set(_read(parent / "cgroup.controllers").split())
    missing = [f for c, f in _needed(limits).items() if c not in available]
    if missing:
        return _refusal(limits, f"{parent} does not offer the controller it needs", missing)
    want = [c for c in ("cpu", "memory", "pids") if c in available and (c != "cpu" or limits.cpus)]
    enable = " ".join(f"+{c}" for c in want)
    if base == parent and _read(parent / "cgroup.procs").split():
        leaf = parent / LAUNCHER_LEAF
        steps += [
            Step("mkdir", leaf),
            Step("adopt", parent / "cgroup.procs", str(leaf / "cgroup.procs")),
        ]
    steps.append(Step("write", parent / "cgroup.subtree_control", enable))
    if base != parent:
        steps += [Step("mkdir", base), Step("write", base / "cgroup.subtree_control", enable)]
    node = base / f"{PREFIX}{slug}"
    steps.append(Step("mkdir", node))
    if limits.cpus is not None:
        steps.append(Step("write", node / "cpu.max", f"{limits.quota_us} {PERIOD_US}"))
    if limits.memory is not None:
        steps.append(Step("write", node / "memory.max", str(limits.memory)))
        steps.append(Step("write-if-there", node / "memory.swap.max", "0"))  # swap accounting
    if "pids" in want:
        steps.append(Step("write", node / "pids.max", str(PIDS_MAX)))
    return Cgroup(2, tuple(steps), (node,), ("/sys/fs/cgroup",))


def _v1(
    slug: str, limits: Limits, root: Path, lines: list[str], writable: Callable[[Path], bool]
) -> Cgroup | str:
    own: dict[str, str] = {}
    for ln in lines:
        _, ctrls, path = [*ln.split(":", 2), "", ""][:3]
        for c in ctrls.split(","):
            own[c] = path
    steps: list[Step] = []
    dirs: list[Path] = []
    views: list[str] = []
    for ctrl in ("cpu", "memory", "pids"):
        field = _needed(limits).get(ctrl)
        if field is None and ctrl != "pids":
            continue
        mount = root / ctrl
        if ctrl not in own or not (mount / "cgroup.procs").exists():  # hierarchy mounted
            if field is None:
                continue  # the pid limit is ours, not the manifest's: best effort
            return _refusal(limits, f"no cgroup v1 {ctrl} controller at {mount}", [field])
        parent = mount / own[ctrl].lstrip("/")
        if not parent.is_dir():  # a cgroup namespace: the path is not under this mount
            parent = mount
        if not writable(parent):
            if field is None:
                continue
            return _refusal(limits, f"{parent} is not writable (cgroup v1 needs root)", [field])
        node = parent / f"{PREFIX}{slug}"
        steps.append(Step("mkdir", node))
        if ctrl == "cpu":
            steps += [Step("write", node / "cpu.cfs_period_us", str(PERIOD_US)),
                      Step("write", node / "cpu.cfs_quota_us", str(limits.quota_us))]  # fmt: skip
        elif ctrl == "memory":
            steps.append(Step("write", node / "memory.limit_in_bytes", str(limits.memory)))
            memsw = node / "memory.memsw.limit_in_bytes"  # with swap accounting only
            steps.append(Step("write-if-there", memsw, str(limits.memory)))
        else:
            steps.append(Step("write", node / "pids.max", str(PIDS_MAX)))
        dirs.append(node)
        views.append(f"/sys/fs/cgroup/{ctrl}")
    return Cgroup(1, tuple(steps), tuple(dirs), tuple(views))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
