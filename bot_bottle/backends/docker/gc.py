"""`bot-bottle gc`: remove what crashed launches left behind.

A bottle is garbage when the launcher that ran it is gone while the bottle was still
active (status created/running/degraded): a bottle kept on purpose ends `stopped` and
stays. Docker objects labelled with a slug that has no state directory are garbage
once the launcher recorded on them is dead, so a launch in progress is never touched.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.backends.docker.layout import LABEL_LAUNCHER, LABEL_SLUG, LABEL_STATE
from bot_bottle.errors import BackendUnavailable
from bot_bottle.names import is_slug
from bot_bottle.sidecars.process import alive
from bot_bottle.state.store import BottleMetadata, StateStore

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.resource import Model

ACTIVE = ("created", "starting", "running", "degraded")


@dataclass(frozen=True)
class Removed:
    kind: str  # state | container | network | volume | note
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
    if pid_alive(pid):
        return None
    return f"status {meta.status}, launcher {pid or '?'} is gone"


def collect(*, dry_run: bool = False, store: StateStore | None = None) -> list[Removed]:
    """Find (and unless `dry_run`, remove) leftovers; returns what went and why."""
    store = store or StateStore()
    out: list[Removed] = []
    client = _client_or_none(out)
    for meta in store.all():
        reason = garbage_reason(store, meta)
        if reason is None:
            continue
        if meta.backend == "docker" and client is not None:
            out += _docker_objects(client, meta.slug, reason, dry_run)
        elif meta.backend != "docker" and not dry_run:
            _remove_other(store, meta)
        if not dry_run:
            store.retire(meta.slug)
        out.append(Removed("state", meta.slug, reason))
    if client is not None:
        out += _orphans(client, store, dry_run)
    return out


def _client_or_none(out: list[Removed]) -> DockerClient | None:
    try:
        from bot_bottle.docker_engine import connect

        return connect(timeout=30)
    except BackendUnavailable as e:
        out.append(Removed("note", "docker", f"skipped Docker objects: {e.message}"))
        return None


def _docker_objects(client: DockerClient, slug: str, reason: str, dry_run: bool) -> list[Removed]:
    from bot_bottle.backends.docker.backend import remove_labelled

    if dry_run:
        flt: dict[str, str | list[str] | bool] = {"label": f"{LABEL_SLUG}={slug}"}
        found = [("container", str(c.name))
                 for c in client.containers.list(all=True, filters=flt)]  # fmt: skip
        found += [("network", str(n.name)) for n in client.networks.list(filters=flt)]
        found += [("volume", str(v.name)) for v in client.volumes.list(filters=flt)]
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
