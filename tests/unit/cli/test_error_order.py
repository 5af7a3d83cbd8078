"""Errors in the right order, and all of them (issue 12 item 10), as a user meets them:
the real problem before the missing terminal, the fix that fits how the manifest was
named, the manifest found from a subdirectory, every manifest error at once, nothing to
run, real HTTP methods only, did-you-mean for agents, a workspace that is a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VALID = (
    "bottles:\n  b:\n    workspace: {path: ws, mode: copy}\n"
    "    agent_provider: {template: command, command: ['true']}\n"
    "agents:\n  coder: {bottle: b}\n  reviewer: {bottle: b}\n"
)


def bb(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BOT_BOTTLE_MANIFEST"}
    env.update(HOME=str(home), BOT_BOTTLE_HOME=str(home / ".bb-state"))
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME the upward search stops at, so nothing above the test leaks in."""
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_no_manifest_and_no_terminal_names_the_manifest(home: Path) -> None:
    r = bb("run", "coder", cwd=home, home=home)
    assert r.returncode == 2
    assert "no bot-bottle.yaml" in r.stderr and "terminal" not in r.stderr, r.stderr


def test_resume_of_an_unknown_bottle_names_the_bottle(home: Path) -> None:
    r = bb("resume", "nosuch", cwd=home, home=home)
    assert r.returncode == 2
    assert "no bottle named 'nosuch'" in r.stderr and "terminal" not in r.stderr, r.stderr


def test_a_bad_run_without_terminal_names_the_run_problem_first(home: Path) -> None:
    (home / "bot-bottle.yaml").write_text(VALID.replace("mode: copy", "mode: copy}\n    x: {"))
    r = bb("run", "coder", cwd=home, home=home)
    assert r.returncode == 2 and "terminal" not in r.stderr, r.stderr


def test_dash_f_missing_does_not_suggest_dash_f(home: Path) -> None:
    r = bb("check", "-f", "nope.yaml", cwd=home, home=home)
    assert r.returncode == 2
    assert "no manifest at nope.yaml" in r.stderr
    assert "pass -f FILE" not in r.stderr and "-f" in r.stderr.split("fix:")[1], r.stderr


def test_check_from_a_subdirectory_finds_the_manifest_above(home: Path) -> None:
    proj = home / "proj"
    (proj / "ws").mkdir(parents=True)
    (proj / "bot-bottle.yaml").write_text(VALID)
    deep = proj / "src" / "deep"
    deep.mkdir(parents=True)
    r = bb("check", cwd=deep, home=home)
    # valid (1: valid, but this host cannot run it, e.g. no namespaces in `unshare -rn`)
    assert r.returncode in (0, 1) and r.stdout.startswith("ok"), r.stdout + r.stderr
    assert f"using {proj / 'bot-bottle.yaml'}" in r.stderr
    # Relative paths in the manifest are the manifest's, not the current directory's.
    plan = json.loads(bb("plan", "coder", "--json", cwd=deep, home=home).stdout)
    assert plan["workspace"]["path"] == str(proj / "ws")


def test_upward_search_stops_at_home(home: Path) -> None:
    (home.parent / "bot-bottle.yaml").write_text(VALID)  # above HOME: not this user's project
    (home / "proj").mkdir()
    r = bb("check", cwd=home / "proj", home=home)
    assert r.returncode == 2 and "no bot-bottle.yaml" in r.stderr, r.stderr
    assert "bot-bottle init" in r.stderr


def test_every_manifest_error_at_once(home: Path) -> None:
    (home / "bot-bottle.yaml").write_text(
        "bottles:\n"
        "  dev: {egres: {}, workspace: copi}\n"
        "  ops: {backend: podman, egress: {routes: [{host: a.com, methods: [FETCH]}]}}\n"
        "agents:\n  a: {bottle: dev}\n"
    )
    r = bb("check", cwd=home, home=home)
    assert r.returncode == 2
    for fragment in ("bottles.dev.egres: unknown key", "bottles.dev.workspace.mode",
                     "bottles.ops.backend", "bottles.ops.egress.routes[0].methods"):  # fmt: skip
        assert fragment in r.stderr, (fragment, r.stderr)
    assert "4 problems" in r.stderr


def test_every_agent_and_file_problem_at_once(home: Path) -> None:
    (home / "bot-bottle.yaml").write_text(
        "bottles:\n  b: {workspace: {path: nows}}\n"
        "  c: {workspace: {path: alsonot}, agent_provider: {dockerfile: img/Dockerfile}}\n"
        "agents:\n  a: {bottle: b, prompt_file: nothere.md}\n  z: {bottle: c}\n"
    )
    r = bb("check", cwd=home, home=home)
    assert r.returncode == 2
    assert "4 problems" in r.stderr, r.stderr
    for fragment in ("nows", "alsonot", "nothere.md", f"no Dockerfile at {home}/img/Dockerfile"):
        assert fragment in r.stderr, (fragment, r.stderr)


def test_every_extends_problem_at_once(home: Path) -> None:
    (home / "bot-bottle.yaml").write_text(
        "bottles:\n  a: {extends: nope}\n  b: {extends: b}\nagents: {}\n"
    )
    r = bb("check", cwd=home, home=home)
    assert r.returncode == 2
    assert "no bottle named 'nope'" in r.stderr and "cycle" in r.stderr, r.stderr


@pytest.mark.parametrize("text", ["", "bottles: {}\nagents: {}\n", "bottles: {b: {}}\n"])
def test_empty_manifest_says_there_is_nothing_to_run(home: Path, text: str) -> None:
    (home / "bot-bottle.yaml").write_text(text)
    r = bb("check", cwd=home, home=home)
    assert r.returncode == 2 and "nothing to run" in r.stderr, r.stdout + r.stderr
    assert "agents:" in r.stderr  # the hint says where agents go
    run = bb("run", "coder", "-y", cwd=home, home=home)
    assert run.returncode == 2 and "defines no agents" in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("method", "ok"),
    [("GET", True), ("patch", True), ("DELETE", True), ("FETCH", False), ("CONNECT", False),
     ("TRACE", False), ("PROPFIND", False)],
)  # fmt: skip
def test_only_real_http_methods(home: Path, method: str, ok: bool) -> None:
    (home / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    workspace: none\n"
        "    agent_provider: {template: command, command: ['true']}\n"
        f"    egress: {{routes: [{{host: a.com, methods: [{method}]}}]}}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    r = bb("check", cwd=home, home=home)
    if ok:
        assert r.returncode in (0, 1) and "methods" not in r.stderr, r.stderr
    else:
        assert r.returncode == 2 and "bottles.b.egress.routes[0].methods" in r.stderr, r.stderr
        assert method in r.stderr


def test_unknown_agent_gets_did_you_mean_and_the_list(home: Path) -> None:
    (home / "ws").mkdir()
    (home / "bot-bottle.yaml").write_text(VALID)
    for cmd in (("plan", "codr"), ("run", "codr", "-y")):
        r = bb(*cmd, cwd=home, home=home)
        assert r.returncode == 2
        assert "did you mean 'coder'" in r.stderr and "coder, reviewer" in r.stderr, r.stderr


def test_workspace_that_is_a_file_says_so(home: Path) -> None:
    (home / "ws").write_text("not a directory")
    (home / "bot-bottle.yaml").write_text(VALID)
    r = bb("check", cwd=home, home=home)
    assert r.returncode == 2
    assert "is a file, not a directory" in r.stderr and "does not exist" not in r.stderr
