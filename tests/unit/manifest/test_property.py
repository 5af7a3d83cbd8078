"""The loader returns a Manifest or raises ManifestError with a path: never anything else."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot_bottle.errors import ManifestError, ManifestErrors
from bot_bottle.manifest.loader import parse_manifest

KEYS = [
    "bottles", "agents", "extends", "agent_provider", "template", "command", "auth_token",
    "forward_host_credentials", "egress", "routes", "host", "path_allowlist", "methods", "auth",
    "scheme", "header", "token_ref", "tls_passthrough", "ssrf_ip_allowlist", "hosts",
    "upstream_ca", "dlp", "patterns", "protect_env", "git", "user", "name", "email", "remotes",
    "url", "env", "from_host", "secret_env", "workspace", "mode", "backend", "resources", "cpus",
    "memory", "supervise", "bottle", "prompt", "prompt_file", "skills", "dev", "base", "claude",
    "codex", "Bearer", "mount",
]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.sampled_from(KEYS), st.text(max_size=12),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=30,
)

VALID: dict[str, Any] = {
    "bottles": {
        "base": {"egress": {"routes": [{"host": "a.com", "auth": {"scheme": "Bearer", "token_ref": "T"}}]}},
        "dev": {"extends": "base", "agent_provider": {"template": "claude", "auth_token": "C"},
                "env": {"A": "x", "B": {"from_host": "H"}}, "git": {"user": {"name": "n"}}},
    },
    "agents": {"coder": {"bottle": "dev", "prompt": "p"}},
}  # fmt: skip


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate(doc: Any, path: tuple[Any, ...], new: Any, how: str) -> Any:
    if not path:
        return new
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "rename" and isinstance(parent, dict):
        parent[str(new)[:10] or "x"] = parent.pop(last)
    else:
        parent[last] = new
    return doc


# A path at the start of the message: `agents.coder.bottle: ...`, `routes[2].host: ...`.
LOCATED = re.compile(r"^[\w-]+(\.[\w-]+|\[\d+\])*: ")


def check(doc: Any) -> None:
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    try:
        parse_manifest(text)
    except ManifestError as e:
        # It says where (`assert str(e)` held for every error): its path, or a path its
        # message starts with. Only a document that is not a mapping, or a key of its
        # own top level, is about the root.
        # Several problems come as one `ManifestErrors`: each must say where.
        for one in e.errors if isinstance(e, ManifestErrors) else (e,):
            root = not isinstance(doc, dict) or one.message.startswith("unknown key")
            assert one.path or LOCATED.match(one.message) or root, one.message


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(values)
def test_generated_documents(doc: Any) -> None:
    check(doc)


ALL_PATHS = paths(VALID)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(ALL_PATHS), values, st.sampled_from(["replace", "delete", "rename"]))
def test_mutated_valid_manifest(path: tuple[Any, ...], new: Any, how: str) -> None:
    check(mutate(VALID, path, new, how))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(data)
