"""`plan --backend docker` asks the real engine what a launch would meet (issue 12
item 9): an agent image that is not built yet is a note (the launch builds it first),
and `plan` names the backend `run` would use."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from bot_bottle.images.bootstrap import base_exists


def test_plan_on_docker_notes_an_image_the_launch_builds(docker_engine: None,
                                                         tmp_path: Path) -> None:  # fmt: skip
    assert base_exists(), "the bootstrapped base image (.ci/docker-setup.sh) is missing"
    (tmp_path / "img").mkdir()
    # A Dockerfile no engine has built: its content is new.
    (tmp_path / "img" / "Dockerfile").write_text(
        f"FROM debian:bookworm-slim\nLABEL bb.test={secrets.token_hex(8)}\n"
    )
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    workspace: none\n    backend: docker\n"
        "    agent_provider: {template: command, command: ['true'], dockerfile: img/Dockerfile}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp_path / "state")}
    env.pop("BOT_BOTTLE_MANIFEST", None)
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "plan", "a", "--json"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, check=False)  # fmt: skip
    data = json.loads(r.stdout)
    assert data["backend"] == "docker" and data["blockers"] == [], r.stdout + r.stderr
    assert any("first launch builds" in n and "img/Dockerfile" in n for n in data["notes"])
    assert r.returncode == 0
