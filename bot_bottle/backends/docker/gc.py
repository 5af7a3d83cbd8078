"""`bot-bottle gc`: remove what crashed launches left behind.

A bottle is garbage when the launcher that ran it is gone while the bottle was still
active (status created/running/degraded): a bottle kept on purpose ends `stopped` and
stays. Docker objects labelled with a slug that has no state directory are garbage
once the launcher recorded on them is dead, so a launch in progress is never touched.

A launcher killed outright (SIGKILL, the OOM killer) runs no cleanup: its sidecars run
on in their own sessions, credentials in their environment, and a sandbox may too. gc
stops what it can tell is that bottle's (`stop_processes`), removes its containers,
networks and volumes, its state (sockets included) and the temporary files a killed
write left. A bottle run with `--keep` keeps its state, HOME and volumes: it is marked
`stopped`, to `resume`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.backends.docker.layout import LABEL_LAUNCHER, LABEL_SLUG, LABEL_STATE
from bot_bottle.errors import BackendUnavailable
from bot_bottle.names import is_slug
from bot_bottle.sidecars.process import alive
from bot_bottle.state.process_identity import Held, hold, identity, is_bot_bottle, running
from bot_bottle.state.store import BottleMetadata, StateStore

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.resource import Model

ACTIVE = ("created", "starting", "running", "degraded")


@dataclass(frozen=True)
class Removed:
    kind: str  # state | process | socket | container | network | volume | temp | note
    name: str
    reason: str


def pid_alive(pid: int | None) -> bool:
    return bool(pid) and alive(pid or 0)


def launcher_pid(store: StateStore, meta: BottleMetadata) -> int | None:
    """The pid the launcher recorded (metadata first, then the docker backend's file)."""
    pid = meta.pids.get("launcher")
    if pid:
        return int(pid)
    try:
        raw = json.loads((store.dir(meta.slug) / "docker.json").read_text())
        return int(raw["launcher_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def garbage_reason(store: StateStore, meta: BottleMetadata) -> str | None:
    if meta.status not in ACTIVE:
        return None
    pid = launcher_pid(store, meta)
    # A pid that now names another process is a launcher gone (docker.json's pid comes
    # with no identity: any live process there counts, erring toward leaving it).
    started = meta.started.get("launcher") if meta.pids.get("launcher") == pid else None
    if pid and running(pid, started):
        return None
    return f"status {meta.status}, launcher {pid or '?'} is gone"


def collect(
    *, dry_run: bool = False, store: StateStore | None = None, orphans: bool = True
) -> list[Removed]:
    """Find (and unless `dry_run`, remove) leftovers; returns what went and why.
    `orphans=False` (the sweep before `run`) looks only at bottles with state, and asks
    the Docker engine only when one of those is a Docker bottle."""
    store = store or StateStore()
    out: list[Removed] = []
    crashed = [(m, r) for m in store.all() if (r := garbage_reason(store, m)) is not None]
    need_docker = orphans or any(m.backend == "docker" for m, _ in crashed)
    client = _client_or_none(out) if need_docker else None
    for meta, reason in crashed:
        kept = bool(meta.extra.get("keep"))
        # Listed first: a stopped sidecar removes its own socket, the rest go with the
        # state dir (or with the backend's removal before it).
        sockets = sorted((store.dir(meta.slug) / "sockets").glob("*.sock")) if not kept else []
        out += stop_processes(store.dir(meta.slug), reason, dry_run, meta)
        out += [Removed("socket", str(p), reason) for p in sockets]
        if meta.backend == "docker" and client is not None:
            out += _docker_objects(client, meta.slug, reason, dry_run, volumes=not kept)
        elif meta.backend != "docker" and not dry_run and not kept:
            _remove_other(store, meta)
        if kept:
            if not dry_run:
                store.update(meta.slug, status="stopped", pids={},
                             extra={"exit_code": None, "crashed": True})  # fmt: skip
            out.append(Removed("note", meta.slug, f"{reason}; kept: `bot-bottle resume "
                                                  f"{meta.slug}` starts it again"))  # fmt: skip
            continue
        if not dry_run:
            store.retire(meta.slug)
        out.append(Removed("state", meta.slug, reason))
    if client is not None and orphans:
        out += _orphans(client, store, dry_run)
    out += _temp_files(store, dry_run)
    return out


def stop_processes(
    state_dir: Path, reason: str, dry_run: bool, meta: BottleMetadata | None = None
) -> list[Removed]:
    """Stop what still works for a bottle whose launcher is gone, and only what is
    bot-bottle's: the pids `meta` recorded that still name the recorded processes; this
    user's bot-bottle processes (`python -m bot_bottle`, as every sidecar runs) working
    in the state dir (sidecars work in its sockets dir); this user's bwrap whose
    arguments name it. Each is signalled with the process group it leads. A process
    that only works there, or that took a recorded pid, is not ours and stays."""
    root = os.path.realpath(state_dir)
    found: dict[int, tuple[Held, str]] = {}
    for name, pid in (meta.pids if meta else {}).items():
        held = hold(pid, meta.started.get(name)) if meta and name != "launcher" else None
        if held is not None:
            found[pid] = (held, name)
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in (os.getpid(), *found):
            continue
        pid, seen = int(d.name), identity(int(d.name))
        try:
            cwd = os.readlink(d / "cwd")
            argv = (d / "cmdline").read_bytes().split(b"\0")
            mine = d.stat().st_uid == os.geteuid()
        except OSError:
            continue
        inside = cwd == root or cwd.startswith(root + "/")
        sidecar = inside and is_bot_bottle(pid)
        sandbox = mine and os.path.basename(argv[0]) == b"bwrap" and _names(argv, root)
        # Held only if still the process just looked at (`seen`), not a pid's next owner.
        held = hold(pid, seen) if (sidecar or sandbox) and seen else None
        if held is not None:
            found[pid] = (held, "bwrap" if sandbox else _sidecar_name(argv))
    try:
        if not dry_run:
            for held, _ in found.values():
                held.signal(signal.SIGTERM, group=True)
            deadline = time.monotonic() + 3
            while not all(h.exited() for h, _ in found.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            for held, _ in found.values():
                held.signal(signal.SIGKILL, group=True)
    finally:
        for held, _ in found.values():
            held.close()
    return [Removed("process", f"{pid} ({name})", reason) for pid, (_, name) in found.items()]


def _names(argv: list[bytes], root: str) -> bool:
    """Whether an argument is `root` or a path in it (not one that merely starts the
    same: another bottle's state dir may extend this one's name)."""
    r = root.encode()
    return any(a == r or a.startswith(r + b"/") for a in argv)


def _sidecar_name(argv: list[bytes]) -> str:
    words = [a.decode(errors="replace") for a in argv]
    for known in ("egress", "git-gate", "git_gate"):
        if any(known in w for w in words):
            return known.replace("_", "-")
    return os.path.basename(words[0]) if words else "?"


def _temp_files(store: StateStore, dry_run: bool) -> list[Removed]:
    """`NAME.PID.tmp` files and dirs a write killed half-way left (snapshots, plan
    cache, approvals), once PID is gone: the finished file is renamed into place whole,
    so a leftover temporary is never anything but garbage."""
    out = []
    for sub in ("snapshots", "cache/plans", "approvals"):
        d = store.root / sub
        for p in sorted(d.iterdir()) if d.is_dir() else ():
            parts = p.name.split(".")
            if len(parts) < 3 or parts[-1] != "tmp" or not parts[-2].isdigit():
                continue
            if pid_alive(int(parts[-2])):
                continue
            if not dry_run:
                if p.is_dir() and not p.is_symlink():
                    import shutil

                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            out.append(Removed("temp", str(p), f"left by process {parts[-2]}, which is gone"))
    return out


def _client_or_none(out: list[Removed]) -> DockerClient | None:
    try:
        from bot_bottle.docker_engine import connect

        return connect(timeout=30)
    except BackendUnavailable as e:
        out.append(Removed("note", "docker", f"skipped Docker objects: {e.message}"))
        return None


def _docker_objects(
    client: DockerClient, slug: str, reason: str, dry_run: bool, volumes: bool = True
) -> list[Removed]:
    from bot_bottle.backends.docker.backend import remove_labelled

    if dry_run or not volumes:
        flt: dict[str, str | list[str] | bool] = {"label": f"{LABEL_SLUG}={slug}"}
        found = [("container", str(c.name))
                 for c in client.containers.list(all=True, filters=flt)]  # fmt: skip
        found += [("network", str(n.name)) for n in client.networks.list(filters=flt)]
        if volumes:
            found += [("volume", str(v.name)) for v in client.volumes.list(filters=flt)]
        if not dry_run:  # a kept bottle: its containers go, its volumes (HOME) stay
            for c in client.containers.list(all=True, filters=flt):
                c.remove(force=True)
            for n in client.networks.list(filters=flt):
                n.remove()
    else:
        found = remove_labelled(client, slug)
    return [Removed(kind, name, reason) for kind, name in found]


def _orphans(client: DockerClient, store: StateStore, dry_run: bool) -> list[Removed]:
    """Labelled objects whose recorded state dir is gone and whose launcher is dead.
    The state dir comes from the label, so a gc under another `BOT_BOTTLE_HOME` never
    mistakes a kept bottle for an orphan."""
    slugs: dict[str, tuple[Path, int | None]] = {}
    objects = [*client.containers.list(all=True, filters={"label": LABEL_SLUG}),
               *client.networks.list(filters={"label": LABEL_SLUG}),
               *client.volumes.list(filters={"label": LABEL_SLUG})]  # fmt: skip
    for obj in objects:
        lab = _labels(obj)
        slug = lab.get(LABEL_SLUG, "")
        if not is_slug(slug):  # not a name bot-bottle gives: not one of ours to judge
            continue
        raw_pid = lab.get(LABEL_LAUNCHER, "")
        state = Path(lab[LABEL_STATE]) if lab.get(LABEL_STATE) else store.dir(slug)
        known = slugs.get(slug)
        pid = int(raw_pid) if raw_pid.isdigit() else (known[1] if known else None)
        slugs[slug] = (state, pid)
    out: list[Removed] = []
    for slug, (state, launcher) in sorted(slugs.items()):
        if not slug or (state / "metadata.json").is_file() or pid_alive(launcher):
            continue
        out += _docker_objects(client, slug, "no bottle state and no live launcher", dry_run)
    return out


def _labels(obj: Model) -> dict[str, str]:
    attrs = obj.attrs
    raw = attrs.get("Labels") if "Labels" in attrs else attrs.get("Config", {}).get("Labels")
    return dict(raw or {})


def _remove_other(store: StateStore, meta: BottleMetadata) -> None:
    """Another backend's bottle: let that backend clean up what it knows about."""
    from bot_bottle.backends.registry import get
    from bot_bottle.backends.spec import BottleSpec

    # Its state dir goes regardless; a backend bug must not stop gc.
    with contextlib.suppress(Exception):
        get(meta.backend).remove(BottleSpec(meta.slug, store.dir(meta.slug), "none", ""))
