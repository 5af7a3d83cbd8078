"""Resolved plans cached on disk, so a warm `run` skips YAML parsing and validation.

Resolving costs ~200 ms, nearly all of it importing PyYAML and building the pydantic
models, repeated identically for an unchanged manifest. The key covers everything
`resolve` reads: the manifest's bytes and path, the agent and its arguments, the
host variables resolve consults, and bot-bottle's own resolver code. Each entry
also records the files the plan was derived from (prompt file, CA bundle, skills,
workspace) with their stat signatures, re-checked on every hit.

Entries are pickles in the state root, which is the user's own (0700): whoever can
write there can already run code as this user, so loading them adds no exposure.
Plans hold names of credentials, never values.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle import __version__
from bot_bottle.plan.model import BottlePlan

FORMAT = 2
RESOLVE_ENV = ("HOME", "BOT_BOTTLE_SKILLS_DIR")
_CODE_DIRS = ("manifest", "plan", "providers", "policy")
_CODE_FILES = ("ask_tool.py",)  # read by the resolver as the content of a provisioned file
Signature = tuple[int, int, int] | None


def signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _code_signature() -> list[Signature]:
    pkg = Path(__file__).resolve().parents[1]
    sigs: list[Signature] = []
    for d in _CODE_DIRS:
        with os.scandir(pkg / d) as it:
            sigs += [signature(e.path) for e in sorted(it, key=lambda e: e.name)
                     if e.name.endswith(".py")]  # fmt: skip
    return sigs + [signature(str(pkg / f)) for f in _CODE_FILES]


def cache_key(
    manifest: Path, data: bytes, agent: str, extra: Sequence[str], host_env: Mapping[str, str]
) -> str:
    parts = [
        FORMAT, __version__, str(manifest.resolve()), hashlib.sha256(data).hexdigest(), agent,
        list(extra), [host_env.get(k) for k in RESOLVE_ENV], _code_signature(),
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cached_resolve(
    manifest: Path,
    agent: str,
    host_env: Mapping[str, str],
    extra: Sequence[str],
    cache_dir: Path,
) -> BottlePlan:
    """The plan for `agent`, from the cache when nothing it depends on changed."""
    try:
        data = manifest.read_bytes()
    except OSError:
        data = b""  # let the loader raise its own clear error below
    key = cache_key(manifest, data, agent, extra, host_env)
    entry = cache_dir / f"{key}.pickle"
    if data:
        try:
            with open(entry, "rb") as f:
                plan, sources = pickle.load(f)
            if isinstance(plan, BottlePlan) and all(signature(p) == s for p, s in sources):
                return plan
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            pass
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve

    plan = resolve(load_manifest(manifest, data or None), agent, host_env, extra)
    _store(entry, plan)
    return plan


def _store(entry: Path, plan: BottlePlan) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    sources = [(p, signature(p)) for p in plan.sources]
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        pickle.dump((plan, sources), f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, entry)
