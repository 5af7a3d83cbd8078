"""Pydantic's validation errors as `ManifestError`s: the exact field path, what was
expected, what was found, and a "did you mean" for a misspelt key; all of them."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from bot_bottle.errors import ManifestError, ManifestErrors
from bot_bottle.manifest.model import Manifest


def to_manifest_error(exc: ValidationError) -> ManifestError:
    """Every validation error, each as path, what was expected and what was found: one
    `ManifestError` when there is one, else a `ManifestErrors` listing them all."""
    errors = exc.errors(include_url=False)
    paths = [_format_loc(_field_path(e["loc"])) for e in errors]
    extras = [p for e, p in zip(errors, paths, strict=True) if e["type"] == "extra_forbidden"]
    extra_parents = {p.rpartition(".")[0] for p in extras}
    out: list[ManifestError] = []
    seen: set[str] = set()
    for err, path in zip(errors, paths, strict=True):
        # A misspelt key also shows up as "missing" for the key it was meant to be, and
        # a union field as the other branch's complaint: the misspelling, with its
        # "did you mean", is the useful message; one message per field is enough.
        if err["type"] != "extra_forbidden":
            if err["type"] == "missing" and path.rpartition(".")[0] in extra_parents:
                continue
            if any(x.startswith(path + ".") for x in extras):
                continue
        if path in seen:
            continue
        seen.add(path)
        out.append(_one(err))
    if len(out) == 1:
        return out[0]
    return ManifestErrors(out)


def _one(err: Any) -> ManifestError:
    """One pydantic error as a `ManifestError`."""
    loc = _field_path(err["loc"])
    path = _format_loc(loc)
    typ = err["type"]
    if typ == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = _format_loc(loc[:-1])
        options = _fields_at(loc[:-1])
        hint = did_you_mean(key, options)
        known = f" (known keys: {', '.join(options)})" if options and not hint else ""
        if key == "remotes" and parent.endswith(".git") and parent.startswith("agents."):
            return ManifestError(
                "git remotes belong on the bottle: a remote carries trust (where pushes go), "
                "so an agent may not add one",
                path,
                fix="move it to bottles.<bottle>.git.remotes; agents may set only git.user",
            )
        return ManifestError(f"unknown key {key!r}{hint}{known}", path)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if typ == "missing":
        return ManifestError("required field is missing", path)
    found = (
        f"; found {kind(err.get('input'))}" if typ not in ("value_error", "assertion_error") else ""
    )
    return ManifestError(f"{msg}{found}", path)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> list[Any]:
    """An error location without pydantic's union-branch tags (`str`, `FromHost`,
    `function-after[...]`): where the schema has a union, the next part names the
    branch the value was tried against, not a field. Walking the schema alongside
    tells the two apart, so a user's key that happens to be called `str` stays."""
    out: list[Any] = []
    ann: Any = Manifest
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key's own error
            continue
        if ann is not None and _is_union(ann) and _step(ann, part) is None:
            ann = _branch(ann, part)
            continue
        out.append(part)
        ann = _step(ann, part) if ann is not None else None
    return out


def _is_union(ann: Any) -> bool:
    """A union pydantic tags branches of: two or more members besides None
    (`X | None` is validated as nullable X, with no tag)."""
    import types
    import typing

    if typing.get_origin(ann) not in (typing.Union, types.UnionType):
        return False
    return len([a for a in typing.get_args(ann) if a is not type(None)]) >= 2


def _branch(union: Any, tag: Any) -> Any:
    """The member of `union` that pydantic's tag names, if it can be told; else None."""
    import typing

    for member in typing.get_args(union):
        if getattr(member, "__name__", None) == tag:
            return member
    return None


def _format_loc(loc: list[Any] | tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _fields_at(loc: list[Any]) -> list[str]:
    """Field names of the model at `loc`, for "did you mean" hints."""
    ann: Any = Manifest
    for p in loc:
        ann = _step(ann, p)
        if ann is None:
            return []
    model = _model_of(ann)
    return sorted(model.model_fields) if model is not None else []


def _step(ann: Any, part: Any) -> Any:
    """The annotation one step down `part` (a field name, a user-chosen key, an index)."""
    import typing

    model = _model_of(ann)
    if isinstance(part, str) and model is not None and part in model.model_fields:
        return model.model_fields[part].annotation
    for arg in (ann, *typing.get_args(ann)):
        origin = typing.get_origin(arg)
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (dict, list):
        return None
    for arg in typing.get_args(annotation):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
