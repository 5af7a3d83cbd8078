"""Routes written into a manifest's own text, every other byte of it kept.

Why text, not a round-tripping YAML library: ruamel.yaml (installed here with
mitmproxy) keeps comments, but it re-emits the whole document with one indentation
setting; on our own starter manifest (mappings at 2, lists at 4 with the dash at 2) its
indentation guesser picked 4/2 and re-indented every block. The manifest is the
operator's file, so this module only inserts: PyYAML's composer gives every node's exact
position, new lines go in there, and nothing else in the file changes (comments, quotes,
flow or block style). The result must load (`parse_manifest`), and differ from the
original only in the routes asked for: an edit that would change anything else, or that
the loader refuses, raises `ManifestError` and nothing is returned to write.

A route goes into the bottle named. A bottle that inherits its routes through `extends`
gets its own list: the parent's routes copied, then the new one (a child's list replaces
its parent's whole, so adding only the new route would drop the inherited ones). A
route already allowed is not written again; one that differs from an existing
credential-less route only in its paths (or only in its methods) widens that route.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest, resolve_extends
from bot_bottle.manifest.model import Manifest, RouteSpec
from bot_bottle.policy.egress_policy import Route
from bot_bottle.policy.route import PathRejected, covers, normalize_path


@dataclass(frozen=True)
class RouteEdit:
    """The manifest's new text, the numbers (from 1) of its lines that are new or
    changed, and what the operator should know (a route already there, a copy)."""

    text: str
    lines: tuple[int, ...]
    notes: tuple[str, ...]


def add_routes(text: str, bottle: str, routes: Sequence[RouteSpec], comment: str = "") -> RouteEdit:
    """`text` with `routes` added to `bottles.<bottle>.egress.routes`; `comment` (one
    line, no newline) goes above each route written."""
    comment = " ".join(comment.split())
    before = parse_manifest(text)
    if bottle not in before.bottles:
        known = ", ".join(sorted(before.bottles)) or "none"
        raise ManifestError(f"no bottle named {bottle!r} (bottles: {known})", "bottles")
    notes: list[str] = []
    current = text
    for route in routes:
        current, note = _add_one(current, bottle, route, comment)
        notes += [note] if note else []
    try:
        after = parse_manifest(current)
    except ManifestError as e:
        raise ManifestError(f"the manifest with the route added would not load ({e.message}); "
                            "nothing was written", fix=e.fix) from None  # fmt: skip
    notes += _check_only_routes_grew(before, after, bottle, routes)
    return RouteEdit(current, _changed_lines(text, current), tuple(notes))


def _add_one(text: str, bottle: str, route: RouteSpec, comment: str) -> tuple[str, str]:
    where = f"bottles.{bottle}"
    body = _value(yaml.compose(text, Loader=yaml.SafeLoader), "bottles", bottle)
    if not isinstance(body, MappingNode):
        raise ManifestError("is empty or not a mapping: add its egress routes by hand", where)
    egress = _value(body, "egress")
    own = _value(egress, "routes") if isinstance(egress, MappingNode) else None
    if not isinstance(egress, MappingNode | None) or not isinstance(own, SequenceNode | None):
        raise ManifestError("is empty or not what a manifest has there: edit it by hand, "
                            "e.g. `routes: []`", f"{where}.egress")  # fmt: skip
    resolved = parse_manifest(text).bottles[bottle].egress.routes
    for i, existing in enumerate(resolved):
        if _covers(existing, route):
            return text, f"{route.host} is already allowed by {where}.egress.routes[{i}]"
    if isinstance(own, SequenceNode):
        for i, (node, existing) in enumerate(zip(own.value, resolved, strict=True)):
            widened = _widen(text, node, existing, route)
            if widened is not None:
                return widened, f"widened {where}.egress.routes[{i}] ({route.host})"
        # `routes: []` in a block mapping becomes a block list (with the comment).
        if own.flow_style and not own.value and isinstance(egress, MappingNode) \
                and not egress.flow_style:  # fmt: skip
            return _fill_empty(text, egress, own, _as_dict(route), comment), ""
        return _seq_append(text, own, [_as_dict(route)], comment), ""
    # No list of its own: copy what it inherits (if anything) into one, then add.
    parent, copied = _inherited(text, bottle)
    items = [*copied, _as_dict(route)]
    lead, note = ({len(copied): comment} if comment else {}), ""
    if copied:
        lead[0] = f"routes copied from bottle {parent} (this list replaces the parent's)"
        note = f"{where} inherited its routes from {parent}: they were copied into its own list"
    if egress is None:
        return _map_add(body, text, "egress", {"routes": items}, lead), note
    return _map_add(egress, text, "routes", items, lead), note


def _value(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        if not isinstance(node, MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key),
                    None)  # fmt: skip
    return node


def _as_dict(route: RouteSpec) -> dict[str, Any]:
    return route.model_dump(mode="json", exclude_defaults=True)


def _flow(value: Any) -> str:
    """`value` as one line of flow YAML, quoted as needed: a path from an agent stays a
    string, whatever characters it holds."""
    out = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=1 << 20,
                         allow_unicode=True).strip()  # fmt: skip
    return out[1:-1]


def _item_lines(value: Any, indent: int, comment: str = "") -> list[str]:
    pad = " " * indent
    lines = [f"{pad}# {comment}"] if comment else []
    if isinstance(value, dict) and value:
        pairs = [f"{_flow(k)}: {_flow(v)}" for k, v in value.items()]
        lines.append(f"{pad}- {pairs[0]}")
        lines += [f"{pad}  {p}" for p in pairs[1:]]
    else:
        lines.append(f"{pad}- {_flow(value)}")
    return lines


def _last_line(node: Node) -> int:
    """The last line (from 0) holding `node`'s own text (not comments after it)."""
    if not node.flow_style if isinstance(node, MappingNode | SequenceNode) else False:
        children = [c for kv in node.value for c in kv] if isinstance(node, MappingNode) \
            else list(node.value)  # fmt: skip
        if children:
            return max(_last_line(c) for c in children)
    end = node.end_mark
    return int(end.line if end.column > 0 else end.line - 1)


def _insert_lines(text: str, after: int, new: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines[after + 1 : after + 1] = [ln + "\n" for ln in new]
    return "".join(lines)


def _insert_in_flow(text: str, node: Node, item: str) -> str:
    """`item` added before the closing bracket of a flow list or mapping."""
    close = int(node.end_mark.index) - 1
    if text[close] not in "]}":
        raise ManifestError(
            "a flow list or mapping ends where it was not expected; edit it by hand"
        )
    prev = text[:close].rstrip()[-1:]
    sep = "" if prev in "[{" else (" " if prev == "," else ", ")
    return text[:close] + sep + item + text[close:]


def _seq_append(text: str, seq: SequenceNode, values: list[Any], comment: str = "") -> str:
    if seq.flow_style:
        return _insert_in_flow(text, seq, ", ".join(_flow(v) for v in values))
    # A block list's node starts at its first dash: new items line up with it.
    col = seq.start_mark.column
    lines = [ln for i, v in enumerate(values) for ln in _item_lines(v, col, "" if i else comment)]
    return _insert_lines(text, _last_line(seq), lines)


def _fill_empty(text: str, parent: MappingNode, seq: SequenceNode, value: Any, comment: str) -> str:
    """An empty flow list (`routes: []`) replaced by a block list holding `value`."""
    key = next(k for k, v in parent.value if v is seq)
    start, end = int(seq.start_mark.index), int(seq.end_mark.index)
    text = text[:start].rstrip(" ") + text[end:]
    lines = _item_lines(value, key.start_mark.column + 2, comment)
    return _insert_lines(text, seq.start_mark.line, lines)


def _map_add(
    node: MappingNode, text: str, key: str, value: Any, lead: dict[int, str]
) -> str:  # fmt: skip
    """`key: value` added to a mapping; `value` is a list of items or `{routes: items}`,
    block style in a block mapping, `lead` the comments above items by index."""
    if node.flow_style:
        return _insert_in_flow(text, node, f"{key}: {_flow(value)}")
    col = node.start_mark.column
    lines = [" " * col + f"{key}:"]
    if isinstance(value, dict):
        ((inner, value),) = value.items()
        col += 2
        lines.append(" " * col + f"{inner}:")
    for i, item in enumerate(value):
        lines += _item_lines(item, col + 2, lead.get(i, ""))
    return _insert_lines(text, _last_line(node), lines)


def _inherited(text: str, bottle: str) -> tuple[str, list[Any]]:
    """The ancestor `bottle`'s routes come from, and those routes as written there."""
    raw = yaml.safe_load(text)["bottles"]
    name = bottle
    while isinstance(raw.get(name), dict) and "extends" in raw[name]:
        name = raw[name]["extends"]
        egress = raw[name].get("egress") if isinstance(raw[name], dict) else None
        if isinstance(egress, dict) and egress.get("routes"):
            return name, list(resolve_extends(raw)[bottle]["egress"]["routes"])
    return "", []


def _same_place(a: RouteSpec, b: RouteSpec) -> bool:
    return (a.host, a.scheme, a.effective_port) == (b.host, b.scheme, b.effective_port) and not (
        a.tls_passthrough or b.tls_passthrough
    )


def _covers(existing: RouteSpec, new: RouteSpec) -> bool:
    """Whether `existing` already allows every request `new` would."""
    if existing == new:
        return True
    if not _same_place(existing, new):
        return False
    if existing.methods and (not new.methods or not set(new.methods) <= set(existing.methods)):
        return False
    if not existing.path_allowlist:
        return True
    if not new.path_allowlist:
        return False
    route = Route(existing.host, paths=tuple(existing.path_allowlist))
    try:
        return all(covers(route, normalize_path(p)) for p in new.path_allowlist)
    except PathRejected:
        return False


def _widen(text: str, node: Node, existing: RouteSpec, new: RouteSpec) -> str | None:
    """`text` with `existing` (at `node`) widened to cover `new`, when the two differ
    only in paths or only in methods; None otherwise. A route with a credential is never
    widened: the grant did not ask for the credential on more paths."""
    if existing.auth or not _same_place(existing, new) or not isinstance(node, MappingNode):
        return None
    paths, methods = set(existing.path_allowlist), set(existing.methods)
    if methods == set(new.methods) and paths and new.path_allowlist:
        key, add = "path_allowlist", [p for p in new.path_allowlist if p not in paths]
    elif paths == set(new.path_allowlist) and methods and new.methods:
        key, add = "methods", [m for m in new.methods if m not in methods]
    else:
        return None
    seq = _value(node, key)
    if not isinstance(seq, SequenceNode) or not seq.value:
        return None
    return _seq_append(text, seq, add) if add else text


def _check_only_routes_grew(
    before: Manifest, after: Manifest, bottle: str, routes: Sequence[RouteSpec]
) -> list[str]:
    """Refuse an edit that changed anything but routes, lost or narrowed one, or left
    one asked for unallowed; name the bottles that inherit the new routes."""

    def fail(what: str) -> ManifestError:
        return ManifestError(f"the edit would have {what}; nothing was written",
                             fix="add the route by hand, then `bot-bottle trust`")  # fmt: skip

    if after.agents != before.agents or set(after.bottles) != set(before.bottles):
        raise fail("changed the agents or bottles")
    notes = []
    for name, old in before.bottles.items():
        new = after.bottles[name]
        if new == old:
            continue
        blank = {"egress": old.egress.model_copy(update={"routes": []})}
        if new.model_copy(update={"egress": new.egress.model_copy(update={"routes": []})}) != \
                old.model_copy(update=blank):  # fmt: skip
            raise fail(f"changed more than the routes of bottle {name}")
        if not all(any(n == o or (n.auth == o.auth and _covers(n, o)) for n in new.egress.routes)
                   for o in old.egress.routes):  # fmt: skip
            raise fail(f"dropped or narrowed a route of bottle {name}")
        if len(new.egress.routes) - len(old.egress.routes) > len(routes):
            raise fail(f"added more routes to bottle {name} than asked")
        if name != bottle:
            notes.append(f"bottle {name} inherits the routes of {bottle} (extends): "
                         "it is allowed the new route too")  # fmt: skip
    granted = after.bottles[bottle].egress.routes
    if not all(any(_covers(g, r) for g in granted) for r in routes):
        raise fail("left a route asked for unallowed")
    return notes


def _changed_lines(old: str, new: str) -> tuple[int, ...]:
    ops = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    return tuple(j + 1 for tag, _i1, _i2, j1, j2 in ops.get_opcodes() if tag in ("insert",
                 "replace") for j in range(j1, j2))  # fmt: skip
