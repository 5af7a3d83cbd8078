"""Long work shows progress: a custom Dockerfile's build streams its output through
`bot-bottle run` while it builds (not only step headers, not only at the end)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, trust

from bot_bottle.images import build

pytestmark = pytest.mark.e2e


def test_custom_dockerfile_build_streams_its_output(tmp_path: Path, docker_ready: None) -> None:
    marker = f"BUILD-MARKER-{secrets.token_hex(6)}"  # new each run: no layer cache
    general = build.tag_for(build.BUNDLED["agent-general"], build.host_ca_bundle().read_bytes())
    img = tmp_path / "img"
    img.mkdir()
    dockerfile = img / "Dockerfile"
    # The step keeps running after the echo: the marker must show before it ends.
    dockerfile.write_text(f"FROM {general}\nRUN echo {marker} && sleep 4\n")
    (tmp_path / "bot-bottle.yaml").write_text(
        """
bottles:
  b:
    agent_provider: {template: command, command: ["true"], dockerfile: img/Dockerfile}
    workspace: none
    backend: docker
agents:
  a: {bottle: b}
"""
    )
    env = base_env(tmp_path)
    trust(env, tmp_path)
    name = f"custom-{build._name_hash(dockerfile)}"
    try:
        seen: list[tuple[float, str]] = []
        with subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                              cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) as p:  # fmt: skip
            assert p.stderr is not None
            for line in p.stderr:
                seen.append((time.monotonic(), line.rstrip("\n")))
        end = time.monotonic()
        text = "\n".join(line for _, line in seen)
        assert p.returncode == 0, text[-3000:]
        at = [t for t, line in seen if marker in line and "echo" not in line]
        assert at, f"the RUN step's output never showed:\n{text[-3000:]}"
        # Shown while the step still ran (it sleeps 4 s after the echo), not at the end.
        assert end - at[0] > 2.5, (end - at[0], text[-3000:])
        assert "\x1b[" not in text  # not a terminal: plain lines, no cursor movement
    finally:
        import docker

        client = docker.from_env()
        for label in (f"{name}-agent", name):  # children first
            for image in client.images.list(filters={"label": f"{build.LABEL}={label}"}):
                client.images.remove(image.id, force=True)


def test_images_ls_lists_the_images_launches_use(tmp_path: Path, docker_ready: None) -> None:
    """Every row is an image a bottle runs, built by the setup: no `missing` row for an
    image nothing uses (the sidecar image was: sidecars run on the host)."""
    env = base_env(tmp_path)
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "images", "ls"], env=env,
                       cwd=tmp_path, capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()]
    assert [row[0] for row in rows] == ["agent-general", "agent-claude", "agent-codex"], r.stdout
    assert all(row[1] == "built" for row in rows), r.stdout
