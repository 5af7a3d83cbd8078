"""The plan cache returns the same plan while nothing it depends on changed, and
a hit never imports the schema (the point of the cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bot_bottle.plan.cache import cached_resolve
from bot_bottle.plan.model import BottlePlan

MANIFEST = """
bottles:
  b:
    agent_provider: {template: command, command: [echo]}
    workspace: none
agents:
  a: {bottle: b, prompt_file: p.txt}
"""


def prompt_of(plan: BottlePlan) -> bytes:
    return next(f.content for f in plan.files if f.path.endswith("prompt.txt"))


def setup(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST)
    (tmp_path / "p.txt").write_text("first prompt")
    return tmp_path / "bot-bottle.yaml", tmp_path / "cache"


def test_hit_miss_and_invalidation(tmp_path: Path) -> None:
    manifest, cache = setup(tmp_path)
    env = {"HOME": str(tmp_path)}
    first = cached_resolve(manifest, "a", env, (), cache)
    assert prompt_of(first) == b"first prompt"
    assert len(list(cache.iterdir())) == 1
    assert cached_resolve(manifest, "a", env, (), cache) == first

    time.sleep(0.01)
    (tmp_path / "p.txt").write_text("second prompt, longer")
    assert prompt_of(cached_resolve(manifest, "a", env, (), cache)) == b"second prompt, longer"

    manifest.write_text(MANIFEST.replace("[echo]", "[printf]"))
    assert cached_resolve(manifest, "a", env, (), cache).argv == ("printf",)
    assert cached_resolve(manifest, "a", env, ("x",), cache).argv == ("printf", "x")


def test_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    manifest, cache = setup(tmp_path)
    plan = cached_resolve(manifest, "a", {}, (), cache)
    entries = list(cache.iterdir())
    assert entries, "nothing was cached: corrupting nothing would pass vacuously"
    for entry in entries:
        entry.write_bytes(b"not a pickle")
    assert cached_resolve(manifest, "a", {}, (), cache) == plan


def test_hit_does_not_import_schema(tmp_path: Path) -> None:
    manifest, cache = setup(tmp_path)
    code = (
        "import sys; from pathlib import Path; from bot_bottle.plan.cache import cached_resolve;"
        f"cached_resolve(Path({str(manifest)!r}), 'a', {{}}, (), Path({str(cache)!r}));"
        "print('pydantic' in sys.modules, 'yaml' in sys.modules)"
    )
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout.strip()  # fmt: skip
    assert run() == "True True"  # miss: resolved for real
    assert run() == "False False"  # hit: no YAML, no schema


def test_the_provisioned_ask_program_is_part_of_the_key() -> None:
    """`bot-bottle-ask` is file content in the plan: a new version must not be served
    from a plan cached before it."""
    from bot_bottle import ask_tool
    from bot_bottle.plan import cache

    assert cache.signature(ask_tool.__file__) in cache._code_signature()
