"""Loading a manifest: YAML -> `extends` merge -> validated `Manifest`.

Every failure is a `ManifestError` whose path names the exact field
(`bottles.dev.egress.routes[2].auth.token_ref`), what was expected and what was found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot_bottle.errors import ManifestError, raise_all
from bot_bottle.manifest.model import Manifest
from bot_bottle.manifest.validation import did_you_mean, kind, to_manifest_error


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest with where it came from and a digest of its bytes."""

    manifest: Manifest
    path: Path
    digest: str

    @property
    def base_dir(self) -> Path:
        return self.path.parent


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: YAML silently keeps the last one, which
    would let a later line quietly override a restriction written above it."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = True
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_manifest(path: Path, data: bytes | None = None) -> LoadedManifest:
    """Load `path`; `data`, when given, is its bytes as the caller already read them, so
    what is parsed is exactly what the caller hashed (no second read to race)."""
    try:
        if data is None:
            _check_size(path.stat().st_size, str(path))  # before reading it all
            data = path.read_bytes()
        else:
            _check_size(len(data), str(path))
    except FileNotFoundError:
        raise ManifestError(
            f"no manifest at {path}", fix="run `bot-bottle init` or pass -f FILE"
        ) from None
    except OSError as e:
        raise ManifestError(f"cannot read {path}: {e.strerror}") from None
    return LoadedManifest(parse_manifest(data, str(path)), path.resolve(), _digest(data))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Real manifests are a few KiB; these refuse a huge or alias-bombed one before it costs
# seconds and gigabytes (list limits are in model.LIMITS; docs/manifest.md lists all).
MAX_BYTES = 128 << 10
MAX_NODES = 20000


def _check_size(size: int, source: str) -> None:
    if size > MAX_BYTES:
        raise ManifestError(
            f"{source} is {size / 1024:.0f} KiB; a manifest may be at most {MAX_BYTES >> 10} KiB",
            fix="split it, or use wildcard hosts and `extends` instead of repeating entries",
        )


def _check_nodes(raw: Any, source: str) -> None:
    """Count values as validation will walk them: a YAML alias counts every time it is
    used, so `&a [*b, *b, ...]` chains cannot multiply into millions of values."""
    stack, seen = [raw], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ManifestError(
                f"{source} expands to more than {MAX_NODES} values (counting every use "
                "of a YAML alias)",
                fix="declare fewer entries (after `extends` is applied, each bottle carries "
                "its parent's entries too)",
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def parse_manifest(data: bytes | str, source: str = "manifest") -> Manifest:
    """Parse YAML text into a validated `Manifest` or raise `ManifestError`."""
    _check_size(
        len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data), source
    )
    try:
        raw = yaml.load(data, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or str(e)
        raise ManifestError(f"{source} is not valid YAML{where}: {problem}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"{source} is not readable text: {e}") from None
    except RecursionError:
        raise ManifestError(f"{source} nests mappings or lists too deeply") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ManifestError(f"expected a mapping with `bottles` and `agents`; found {kind(raw)}")
    _check_nodes(raw, source)
    raw = dict(raw)
    bottles = raw.get("bottles")
    if isinstance(bottles, dict):
        raw["bottles"] = resolve_extends(bottles)
        _check_nodes(raw, source)
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        raise to_manifest_error(e) from None


def resolve_extends(bottles: dict[Any, Any]) -> dict[Any, Any]:
    """Merge each bottle over its `extends` parent, per field, child winning.

    Mappings merge recursively; lists and scalars are replaced whole, so a child that
    narrows `routes` really narrows them. Unknown parents and cycles are errors.
    """
    resolved: dict[Any, Any] = {}
    in_cycle: set[Any] = set()

    def merged(name: Any, chain: tuple[Any, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        body = bottles[name]
        if not isinstance(body, dict) or "extends" not in body:
            resolved[name] = body
            return body
        parent = body["extends"]
        where = f"bottles.{name}.extends"
        if not isinstance(parent, str):
            raise ManifestError(f"expected a bottle name; found {kind(parent)}", where)
        if parent not in bottles:
            raise ManifestError(
                f"no bottle named {parent!r}{did_you_mean(parent, [str(b) for b in bottles])}",
                where,
            )
        if parent in chain or parent == name:
            in_cycle.update((*chain, name))
            cycle = " -> ".join(str(c) for c in (*chain, name, parent))
            raise ManifestError(f"extends cycle: {cycle}", where)
        base = merged(parent, (*chain, name))
        child = {k: v for k, v in body.items() if k != "extends"}
        out = _deep_merge(base, child) if isinstance(base, dict) else child
        resolved[name] = out
        return out

    errors: list[ManifestError] = []
    for name in bottles:
        if name in in_cycle:  # its cycle is reported once, from where it was found
            continue
        try:
            merged(name, ())
        except ManifestError as e:  # every bottle's problem, not only the first
            if all(e.message != seen.message for seen in errors):
                errors.append(e)
    raise_all(errors)
    return resolved


def _deep_merge(base: dict[Any, Any], child: dict[Any, Any]) -> dict[Any, Any]:
    out = dict(base)
    for k, v in child.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out
