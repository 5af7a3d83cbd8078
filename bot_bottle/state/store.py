"""Per-bottle state on disk: a directory per slug with JSON metadata, and file locks.

Lives under platformdirs' user data dir, or `$BOT_BOTTLE_HOME`. Never holds a secret.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot_bottle.errors import DamagedState, StateError
from bot_bottle.names import NAME_RULE, is_name, is_slug
from bot_bottle.state.file_lock import file_lock
from bot_bottle.state.process_identity import identity

_WORDS = (
    "amber", "brisk", "cedar", "dune", "ember", "fjord", "gale", "harbor", "iris", "juniper",
    "kelp", "lumen", "moss", "nimbus", "opal", "pine", "quartz", "reef", "sage", "tide",
)  # fmt: skip


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    """Root of bot-bottle's state: `$BOT_BOTTLE_HOME` or the platform data dir."""
    env = os.environ if env is None else env
    if env.get("BOT_BOTTLE_HOME"):
        return Path(env["BOT_BOTTLE_HOME"])
    from platformdirs import user_data_dir

    return Path(user_data_dir("bot-bottle"))


@dataclass
class BottleMetadata:
    """What `ls`, `info`, `resume` and `gc` need to know about a bottle."""

    slug: str
    agent: str
    bottle: str
    backend: str
    manifest_path: str
    manifest_digest: str
    created: str
    status: str = "created"  # created | running | stopped | degraded | exited
    pids: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # Which process each pid was when recorded (`process_identity`): a pid is signalled
    # only while it still names that process.
    started: dict[str, str] = field(default_factory=dict)


def check_slug(slug: str) -> str:
    """`slug` itself, if it is a plain name; StateError otherwise."""
    if not is_slug(slug):
        raise StateError(f"{slug!r} is not a bottle name ({NAME_RULE})",
                         "see `bot-bottle ls` for the bottles there are")  # fmt: skip
    return slug


class StateStore:
    """All bottles' state directories, with a lock for anything allocated concurrently."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or home_dir()
        self.bottles = self.root / "bottles"

    @contextmanager
    def lock(self, name: str = "global") -> Iterator[None]:
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / "locks" / f"{name}.lock", timeout=30):
            yield

    def dir(self, slug: str) -> Path:
        """The state dir of `slug`. Every path this store builds from a slug goes through
        here or `archived_audit_log`: a slug that is not a plain name never becomes one."""
        return self.bottles / check_slug(slug)

    @staticmethod
    def audit_log(state_dir: Path) -> Path:
        """The bottle's one hash-chained audit log, shared by egress and the git gate."""
        return state_dir / "audit.jsonl"

    def archived_audit_log(self, slug: str) -> Path:
        return self.root / "logs" / f"{check_slug(slug)}.jsonl"

    def archived_metadata(self, slug: str) -> Path:
        """A removed bottle's last metadata (status `removed`), beside its audit log:
        what `ls --all` and `logs --last` know of it."""
        return self.root / "logs" / f"{check_slug(slug)}.json"

    def find_audit_log(self, slug: str) -> Path:
        """A bottle's audit log, whether it still exists or was removed (`retire`)."""
        live = self.audit_log(self.dir(slug))
        return live if live.exists() else self.archived_audit_log(slug)

    def retire(self, slug: str) -> None:
        """Delete a bottle's state, keeping its audit log and its metadata (as
        `removed`, no pids): what an agent did outlives the sandbox it did it in."""
        audit = self.audit_log(self.dir(slug))
        (self.root / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        if audit.exists():
            os.replace(audit, self.archived_audit_log(slug))
        try:
            meta = replace(self.load(slug), status="removed", pids={}, started={})
            _write_json(self.archived_metadata(slug), asdict(meta))
        except StateError:
            pass  # damaged or already gone: the log alone remains
        shutil.rmtree(self.dir(slug), ignore_errors=True)

    def create(
        self, *, agent: str, bottle: str, backend: str, manifest_path: str, manifest_digest: str
    ) -> BottleMetadata:
        """Allocate a fresh slug (`agent-word-hex`) and its directory, atomically."""
        if not is_name(agent):
            raise StateError(f"{agent!r} is not an agent name ({NAME_RULE})",
                             "rename the agent in the manifest")  # fmt: skip
        with self.lock("slugs"):
            while True:
                slug = f"{agent}-{secrets.choice(_WORDS)}-{secrets.token_hex(2)}"
                # A retired bottle's kept log and metadata reserve its slug too.
                kept = (self.dir(slug), self.archived_audit_log(slug), self.archived_metadata(slug))
                if not any(p.exists() for p in kept):
                    break
            self.dir(slug).mkdir(parents=True, mode=0o700)
        meta = BottleMetadata(
            slug=slug,
            agent=agent,
            bottle=bottle,
            backend=backend,
            # Absolute: `resume` and `logs --last` run from any directory.
            manifest_path=os.path.abspath(manifest_path),
            manifest_digest=manifest_digest,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            # From the first moment: `gc` (and the sweep before every `run`) takes a
            # bottle without a live launcher for the leftover of a crash.
            pids={"launcher": os.getpid()},
            started=_identities({"launcher": os.getpid()}),
        )
        self.save(meta)
        return meta

    def save(self, meta: BottleMetadata) -> None:
        _write_json(self.dir(meta.slug) / "metadata.json", asdict(meta))

    def update(
        self,
        slug: str,
        *,
        status: str | None = None,
        pids: Mapping[str, int] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> BottleMetadata:
        """Change what a launch changes: `status` and `pids` replace theirs; `extra` is
        merged in (the keys given replace theirs), so callers never merge by hand. The
        `pids` given must name processes running now: each is recorded with its
        identity, read here; without `pids` the recorded identities stay as they were
        (a pid may have changed hands since). Under a lock: a launcher and a `stop`
        from another terminal both write, and neither may lose the other's change (a
        stop request, a pid)."""
        with self.lock("metadata"):
            meta = self.load(slug)
            meta = replace(
                meta,
                status=meta.status if status is None else status,
                pids=dict(meta.pids if pids is None else pids),
                extra={**meta.extra, **(extra or {})},
                started=dict(meta.started if pids is None else _identities(pids)),
            )
            self.save(meta)
        return meta

    def load(self, slug: str) -> BottleMetadata:
        return self._read(slug, self.dir(slug) / "metadata.json")

    def load_any(self, slug: str) -> BottleMetadata:
        """`slug`'s metadata, whether the bottle exists or was removed (`retire`)."""
        if self.dir(slug).exists() or not self.archived_metadata(slug).exists():
            return self.load(slug)
        return self._read(slug, self.archived_metadata(slug))

    def _read(self, slug: str, path: Path) -> BottleMetadata:
        fix = f"`bot-bottle rm {slug}` removes the bottle (its audit log is kept)"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            if self.dir(slug).is_dir():  # the directory without its metadata: cut short
                raise DamagedState(str(path), "missing", fix) from None
            raise StateError(f"no bottle named {slug!r}", "see `bot-bottle ls`") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DamagedState(str(path), str(e), fix) from None
        try:
            meta = _metadata(raw)
        except (TypeError, ValueError) as e:
            raise DamagedState(str(path), str(e), fix) from None
        if meta.slug != slug:
            raise DamagedState(str(path), f"it names another bottle, {meta.slug!r}", fix)
        return meta

    def retired(self) -> list[BottleMetadata]:
        """Removed bottles whose metadata was kept with their logs, oldest first."""
        logs = self.root / "logs"
        found = []
        for f in sorted(logs.glob("*.json")) if logs.is_dir() else []:
            if is_slug(f.stem) and not self.dir(f.stem).exists():
                try:
                    found.append(self._read(f.stem, f))
                except StateError:
                    continue
        return sorted(found, key=lambda m: m.created)

    def last(self, manifest_path: str | None) -> BottleMetadata | None:
        """The newest bottle (existing or removed), of `manifest_path` if given."""
        every = [*self.all(), *self.retired()]
        mine = [m for m in every if manifest_path is None or m.manifest_path == manifest_path]
        return max(mine, key=lambda m: m.created, default=None)

    def damaged(self) -> list[DamagedState]:
        """Bottles whose state cannot be read, each error naming its file and the fix
        (`all` lists the others: one damaged bottle never hides the rest)."""
        out = []
        for d in sorted(self.bottles.iterdir()) if self.bottles.is_dir() else ():
            if is_slug(d.name) and d.is_dir():
                try:
                    self.load(d.name)
                except DamagedState as e:
                    out.append(e)
        return out

    def all(self) -> list[BottleMetadata]:
        if not self.bottles.is_dir():
            return []
        out = []
        for d in sorted(self.bottles.iterdir()):
            if is_slug(d.name) and (d / "metadata.json").is_file():
                try:
                    out.append(self.load(d.name))
                except StateError:
                    continue
        return out


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _identities(pids: Mapping[str, int]) -> dict[str, str]:
    """Each pid's identity, read now: pids are recorded while their processes run (the
    launcher's own, its children's). A pid already gone gets none: it is never signalled."""
    return {name: found for name, pid in pids.items() if (found := identity(pid)) is not None}


def _metadata(raw: object) -> BottleMetadata:
    """`BottleMetadata` from parsed JSON, checked field by field (TypeError/ValueError)."""
    if not isinstance(raw, dict):
        raise TypeError(f"a JSON object was expected, not {type(raw).__name__}")
    known = BottleMetadata.__dataclass_fields__
    meta = BottleMetadata(**{k: v for k, v in raw.items() if k in known})
    for name in ("slug", "agent", "bottle", "backend", "manifest_path", "status"):
        if not isinstance(getattr(meta, name), str):
            raise TypeError(f"{name} is not a string")
    pids_ok = isinstance(meta.pids, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in meta.pids.values()
    )
    started_ok = isinstance(meta.started, dict) and all(
        isinstance(v, str) for v in meta.started.values()
    )
    if not pids_ok or not started_ok or not isinstance(meta.extra, dict):
        raise TypeError("pids, started or extra is not what bot-bottle writes")
    return meta
