"""The layers of the design as data, held against the package's real imports.

Every `import` in `bot_bottle` (top-level, inside functions, under TYPE_CHECKING:
each is a dependency someone reads) must point to the same floor or one below, and
no module may reach itself through them. A module past 300 lines says why in its
docstring ("300 lines" and the reason), or is split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bot_bottle"

# Bottom floor first. A module may import its own floor and any floor below.
FLOORS: tuple[tuple[str, ...], ...] = (
    # Shared leaves: errors, names, the subprocess seam, the Docker engine client.
    # `ask_tool` runs inside bottles: the standard library only.
    ("errors", "names", "agents", "executor", "docker_engine", "unix_socket", "ask_tool", ""),
    # Pure decisions over plain values; the manifest validates with them (patterns).
    ("policy",),
    ("manifest",),
    ("providers",),
    ("plan",),
    ("state",),
    ("provision",),
    ("sidecars",),
    ("images",),
    ("backends",),
    ("launch", "preflight"),
    ("repair",),
    ("cli", "__main__"),
)
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["bot_bottle", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The bot_bottle modules `name` imports (`from pkg import mod` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "bot_bottle":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "bot_bottle"}
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(FLOORS):
        if top in names:
            return i
    raise AssertionError(f"{module}: not on any floor; add its package to FLOORS")


def test_every_module_is_on_a_floor() -> None:
    for name in MODULES:
        floor(name)


def test_no_import_points_up() -> None:
    upward = sorted(
        f"{src} -> {dst}"
        for src, targets in GRAPH.items()
        for dst in targets
        if floor(dst) > floor(src)
    )
    assert upward == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    assert _cycles() == []


def test_the_checks_see_what_they_claim() -> None:
    """The graph is real: a known downward edge is found, and a planted circle and
    an upward edge would be reported."""
    assert "bot_bottle.executor" in GRAPH["bot_bottle.sidecars.process"]
    GRAPH["bot_bottle.executor"].add("bot_bottle.sidecars.process")
    try:
        assert _cycles() != []
        assert floor("bot_bottle.sidecars.process") > floor("bot_bottle.executor")
    finally:
        GRAPH["bot_bottle.executor"].discard("bot_bottle.sidecars.process")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_long_modules_say_why(name: str) -> None:
    path = MODULES[name]
    text = path.read_text("utf-8")
    if text.count("\n") <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert f"{MAX_LINES} lines" in doc, (
        f"{path.relative_to(PACKAGE.parent)} has {text.count(chr(10))} lines: split it, "
        f"or say in its docstring why it is longer than {MAX_LINES} lines"
    )
