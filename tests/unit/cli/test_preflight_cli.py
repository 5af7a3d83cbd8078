"""`plan`, `check` and `doctor` predict `run` (issue 12 item 9): for each broken setup,
`plan` exits 1 naming every blocker, and `run -y` (configuration approved, so only
the blockers stand in its way) exits non-zero naming the same ones, before anything
starts. Both call `preflight.preflight`; this table holds them to it from outside."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CLAUDE = (
    "bottles:\n  b:\n    workspace: none\n"
    "    agent_provider: {{auth_token: CLAUDE_CODE_OAUTH_TOKEN}}\n{extra}"
    "agents:\n  a: {{bottle: b}}\n"
)
COMMAND = (
    "bottles:\n  b:\n    workspace: none\n"
    "    agent_provider: {{template: command, command: ['true']}}\n{extra}"
    "agents:\n  a: {{bottle: b}}\n"
)
NO_ENGINE = "unix:///nonexistent/bot-bottle-test/docker.sock"


@dataclass(frozen=True)
class Broken:
    """A setup `run` cannot start, and the words each of its blockers is named by."""

    id: str
    manifest: str
    env: dict[str, str]
    names: tuple[str, ...]
    cli_installed: bool = True
    args: tuple[str, ...] = ()


TABLE = [
    Broken("token-unset", CLAUDE.format(extra=""), {}, ("CLAUDE_CODE_OAUTH_TOKEN",)),
    Broken("cli-missing", CLAUDE.format(extra=""), {"CLAUDE_CODE_OAUTH_TOKEN": "t"},
           ("claude is not installed",), cli_installed=False),
    Broken("token-and-cli", CLAUDE.format(extra=""), {},
           ("CLAUDE_CODE_OAUTH_TOKEN", "claude is not installed"), cli_installed=False),
    Broken("from-host-unset", COMMAND.format(extra="    env: {K: {from_host: BB_NOPE}}\n"), {},
           ("BB_NOPE",)),
    Broken("git-token-unset",
           COMMAND.format(extra="    git: {remotes: [{name: o, url: 'https://git.invalid/r.git',"
                                " token_ref: BB_GIT_TOK}]}\n"), {},
           ("BB_GIT_TOK",)),
    Broken("route-token-and-git-token",
           COMMAND.format(extra="    egress: {routes: [{host: api.invalid, auth: {scheme: Bearer,"
                                " token_ref: BB_API_TOK}}]}\n"
                                "    git: {remotes: [{name: o, url: 'https://git.invalid/r.git',"
                                " token_ref: BB_GIT_TOK}]}\n"), {},
           ("BB_API_TOK", "BB_GIT_TOK")),
    Broken("backend-flag-unavailable", COMMAND.format(extra=""), {"DOCKER_HOST": NO_ENGINE},
           ("backend docker cannot run here",), args=("--backend", "docker")),
    Broken("manifest-backend-unavailable", COMMAND.format(extra="    backend: docker\n"),
           {"DOCKER_HOST": NO_ENGINE}, ("backend docker cannot run here",)),
    Broken("backend-and-token", CLAUDE.format(extra="    backend: docker\n"),
           {"DOCKER_HOST": NO_ENGINE}, ("backend docker cannot run here",
                                        "CLAUDE_CODE_OAUTH_TOKEN")),
]  # fmt: skip


@functools.cache
def namespace_ok() -> bool:
    """Whether this host can build a namespace sandbox (not inside `unshare -rn`, where
    bubblewrap cannot nest): where it cannot, that is one more blocker, and `plan` and
    `run` must both name it too."""
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "doctor", "--json"],
                       capture_output=True, text=True, check=False, cwd="/",
                       env={**os.environ, "DOCKER_HOST": NO_ENGINE})  # fmt: skip
    return any(b["backend"] == "namespace" and b["ok"] for b in json.loads(r.stdout)["backends"])


NS_BLOCKER = "backend namespace cannot run here"


def expected(case: Broken) -> tuple[str, ...]:
    on_namespace = "docker" not in case.args and "backend: docker" not in case.manifest
    return case.names if namespace_ok() or not on_namespace else (*case.names, NS_BLOCKER)


def _env(tmp: Path, extra: dict[str, str], cli_installed: bool) -> dict[str, str]:
    agents = tmp / "agents"
    (agents / "bin").mkdir(parents=True, exist_ok=True)
    if cli_installed:
        for name in ("claude", "codex"):
            (agents / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
            (agents / "bin" / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLAUDE_CODE_OAUTH_TOKEN", "DOCKER_HOST", "BOT_BOTTLE_MANIFEST")}  # fmt: skip
    env.update(HOME=str(tmp / "home"), BOT_BOTTLE_HOME=str(tmp / "state"),
               BOT_BOTTLE_AGENTS=str(agents), **extra)  # fmt: skip
    (tmp / "home").mkdir(exist_ok=True)
    return env


def bb(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.parametrize("case", TABLE, ids=[c.id for c in TABLE])
def test_plan_reports_every_blocker_run_stops_on(tmp_path: Path, case: Broken) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(case.manifest)
    env = _env(tmp_path, case.env, case.cli_installed)
    trusted = bb("trust", "--yes", cwd=tmp_path, env=env)
    assert trusted.returncode == 0, trusted.stderr

    names = expected(case)
    plan = bb("plan", "a", *case.args, cwd=tmp_path, env=env)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    out = plan.stdout + plan.stderr
    for name in names:
        assert name in out, (name, out)
    assert "Traceback" not in out

    as_json = bb("plan", "a", "--json", *case.args, cwd=tmp_path, env=env)
    assert as_json.returncode == 1
    blockers = json.loads(as_json.stdout)["blockers"]
    assert len(blockers) == len(names), blockers
    for name in names:
        assert any(name in b["message"] for b in blockers), (name, blockers)

    run = bb("run", "a", "-y", *case.args, cwd=tmp_path, env=env)
    assert run.returncode not in (0, None), run.stderr
    for name in names:
        assert name in run.stderr, (name, run.stderr)
    # ... and no other: one blocker is its own message, several are counted.
    many = f"cannot start, {len(names)} problems:"
    assert (many in run.stderr) if len(names) > 1 else ("problems:" not in run.stderr)
    assert "Traceback" not in run.stderr
    # Nothing started: no bottle was created.
    assert "no bottles" in bb("ls", cwd=tmp_path, env=env).stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="a root-owned workspace is refused to root only")
def test_root_owned_workspace_is_a_blocker(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "bot-bottle.yaml").write_text(
        COMMAND.format(extra="").replace("workspace: none", "workspace: {path: ws}")
    )
    env = _env(tmp_path, {}, True)
    assert bb("trust", "--yes", cwd=tmp_path, env=env).returncode == 0
    plan = bb("plan", "a", cwd=tmp_path, env=env)
    assert plan.returncode == 1 and "is owned by root" in plan.stdout + plan.stderr
    run = bb("run", "a", "-y", cwd=tmp_path, env=env)
    assert run.returncode == 2 and "is owned by root" in run.stderr, run.stderr


def test_plan_names_the_backend_run_resolves(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(COMMAND.format(extra=""))
    env = _env(tmp_path, {"DOCKER_HOST": NO_ENGINE}, True)
    auto = bb("plan", "a", cwd=tmp_path, env=env)
    assert "backend namespace" in auto.stdout and "backend auto" not in auto.stdout, auto.stdout
    assert json.loads(bb("plan", "a", "--json", cwd=tmp_path, env=env).stdout)["backend"] == (
        "namespace"
    )
    docker = bb("plan", "a", "--backend", "docker", cwd=tmp_path, env=env)
    assert "backend docker" in docker.stdout and "backend namespace" not in docker.stdout


def test_unapproved_is_a_note_in_plan_and_a_refusal_for_run_y(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(COMMAND.format(extra=""))
    env = _env(tmp_path, {}, True)
    plan = bb("plan", "a", "--json", cwd=tmp_path, env=env)
    data = json.loads(plan.stdout)
    blockers = [b["message"] for b in data["blockers"]]
    if namespace_ok():
        assert plan.returncode == 0 and blockers == [], plan.stdout
    else:
        assert plan.returncode == 1 and len(blockers) == 1 and NS_BLOCKER in blockers[0]
    assert any("run -y" in n for n in data["notes"]), data["notes"]
    run = bb("run", "a", "-y", cwd=tmp_path, env=env)
    assert run.returncode == 2 and "never been approved" in run.stderr


def test_check_and_doctor_report_blockers_of_the_manifest_here(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(CLAUDE.format(extra=""))
    env = _env(tmp_path, {}, False)
    check = bb("check", cwd=tmp_path, env=env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "CLAUDE_CODE_OAUTH_TOKEN" in check.stdout and "claude is not installed" in check.stdout
    doctor = bb("doctor", cwd=tmp_path, env=env)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "CLAUDE_CODE_OAUTH_TOKEN" in doctor.stdout
    assert "claude is not installed" in doctor.stdout
    ready = _env(tmp_path, {"CLAUDE_CODE_OAUTH_TOKEN": "t"}, True)
    rc = 0 if namespace_ok() else 1  # where no sandbox can be built, that still blocks
    assert bb("check", cwd=tmp_path, env=ready).returncode == rc
    assert bb("doctor", cwd=tmp_path, env=ready).returncode == rc


def test_auto_never_resolves_a_dockerfile_bottle_to_microvm(tmp_path: Path) -> None:
    """A bottle with its own `dockerfile` and no engine: `auto` falls back as before the
    microVM backend existed; a microVM (whose root is no bottle's own image) would only
    refuse the Dockerfile, a misleading answer to "no engine"."""
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    workspace: none\n    agent_provider: {template: command, "
        "command: ['true'], dockerfile: Dockerfile}\nagents:\n  a: {bottle: b}\n"
    )
    env = _env(tmp_path, {"DOCKER_HOST": NO_ENGINE}, True)
    plan = bb("plan", "a", "--json", cwd=tmp_path, env=env)
    assert json.loads(plan.stdout)["backend"] != "microvm", plan.stdout
    assert "not supported on the microvm backend" not in plan.stdout
