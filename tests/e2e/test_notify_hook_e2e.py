"""The notification hook in the user's config (`~/.config/bot-bottle/config.yaml`,
`notify.command`): when a real bottle's agent asks for a route, the launcher runs the
hook with the request as JSON on its stdin. What the agent wrote reaches the hook only
there: not in its argv, not in its environment, and it does not run in the agent's
workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import agent_workspace, base_env, bb, trust, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_supervise_e2e import start

pytestmark = pytest.mark.e2e

HOOK = 'cat > "$1/notified.json"; env > "$1/notified.env"; pwd > "$1/notified.cwd"'


def test_a_request_runs_the_notify_hook_with_json_on_stdin(
    tmp_path: Path, upstream: object
) -> None:
    out = tmp_path / "hook-out"
    out.mkdir()
    config = tmp_path / "host-home" / ".config" / "bot-bottle" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f"notify:\n  command: [sh, -c, {json.dumps(HOOK)}, hook, {json.dumps(str(out))}]\n"
        "  timeout: 5\n"
    )
    env, ws, proc = start(tmp_path, "namespace", upstream)  # type: ignore[arg-type]
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        got = json.loads(wait_for(out / "notified.json", "}", timeout=30))
        assert bb(["deny", rid, "--reason", "not now"], env, tmp_path).returncode == 0
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert got["id"] == rid and got["status"] == "pending", got
    assert got["event"] == "request" and got["bottle"].startswith("a-"), got
    assert got["ask"]["host"] == "api.example.test" and got["ask"]["path"] == "/v1/", got
    assert got["reason"] == "fetch the data the task needs", got
    hook_env = (out / "notified.env").read_text()
    assert "fetch the data" not in hook_env and rid not in hook_env, hook_env
    assert Path((out / "notified.cwd").read_text().strip()) != ws


def test_a_malformed_config_stops_run_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "host-home" / ".config" / "bot-bottle" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("notify:\n  command: [notify-send]\n  timeout: forever\n")
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    agent_provider: {template: command, command: ['true']}\n"
        "    supervise: true\n    backend: namespace\n    workspace: {mode: mount, path: ws}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    agent_workspace(tmp_path / "ws")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"{config}: notify.timeout: a number of seconds" in r.stderr, r.stderr
    assert not (tmp_path / "bb-home" / "bottles").exists() or not any(
        (tmp_path / "bb-home" / "bottles").iterdir()
    ), "no bottle was created"
