"""The audit log's disk full, or its file at the size limit (issue 14, item 4): the
agent's requests are refused at once with a reason that names the audit log (fail
closed: nothing leaves unrecorded), the upstream sees none of them, the records
already written stay whole (`logs --verify` passes), and requests pass again once the
log can be written.

The state dir sits on a small tmpfs the test mounts and then fills; the size limit is
the egress sidecar's own RLIMIT_FSIZE, lowered with `prlimit` while it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, need, trust, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

pytestmark = pytest.mark.e2e

# The agent: for each /workspace/go-N the test writes (a path), one curl through the
# egress, its status, body and time written back; /workspace/stop ends it.
AGENT = r"""
import os, subprocess, time
port = os.environ["UP_PORT"]
n = 0
while not os.path.exists("/workspace/stop"):
    if not os.path.exists(f"/workspace/go-{n}"):
        time.sleep(0.05)
        continue
    path = open(f"/workspace/go-{n}").read()
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", f"/workspace/body-{n}",
                        "-w", "%{http_code}", f"https://api.example.test:{port}{path}"],
                       capture_output=True, text=True)
    out = f"{p.stdout} {time.monotonic() - t0:.2f} {p.returncode}"
    open(f"/workspace/out-{n}.tmp", "w").write(out)
    os.rename(f"/workspace/out-{n}.tmp", f"/workspace/out-{n}")
    n += 1
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs for the state dir (bot-bottle's home)."""
    need(os.geteuid() == 0, "mounting a small tmpfs for the state dir needs root")
    home = tmp_path / "bb-home"
    home.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(home)],
                   check=True)  # fmt: skip
    yield home
    subprocess.run(["umount", "-l", str(home)], check=False)


class Agent:
    def __init__(self, ws: Path) -> None:
        self.ws = ws
        self.n = 0

    def get(self, path: str) -> tuple[str, float, str]:
        """One request by the agent: (HTTP status, seconds it took, body)."""
        (self.ws / f"go-{self.n}").write_text(path)
        code, secs, _rc = wait_for(self.ws / f"out-{self.n}", " ").split()
        body = (self.ws / f"body-{self.n}").read_text(errors="replace")
        self.n += 1
        return code, float(secs), body

    def get_again(self, path: str) -> str:
        """The status of `path` once the log can be written again: after a write that
        failed, one request may still be refused (its refusal's record is the write
        that shows the log works)."""
        code, _, body = self.get(path)
        if code == "403" and "audit log" in body:
            code, _, body = self.get(path)
        return code


def _fill(disk: Path) -> Path:
    """Fill `disk` to the last block (a MiB at a time, then 4 KiB at a time)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * chunk) == chunk:
                    pass
    finally:
        os.close(fd)
    return filler


def test_audit_log_full_fails_closed(
    tmp_path: Path, small_disk: Path, upstream: Upstream, bottle_backend: str
) -> None:
    marker = f"a{random.randrange(16**8):08x}"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(AGENT)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider: {{template: command, command: [python3, /workspace/agent.py]}}
    egress:
      hosts: {{api.example.test: 127.0.0.1}}
      upstream_ca: {upstream.ca_path}
      ssrf_ip_allowlist: [127.0.0.1/32]
      routes:
        - host: api.example.test
          port: {upstream.port}
    env:
      UP_PORT: '{upstream.port}'
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  a: {{bottle: b}}
""")
    env = base_env(tmp_path)
    assert Path(env["BOT_BOTTLE_HOME"]) == small_disk
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "a", "-y", "--keep"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    agent = Agent(ws)
    filler = small_disk / "filler"
    try:
        for i in range(3):
            code, _, _ = agent.get(f"/v1/{marker}-before-{i}")
            assert code == "200", (code, proc.poll())
        (bottle,) = bottles(env, tmp_path)
        slug = bottle["slug"]
        log = small_disk / "bottles" / slug / "audit.jsonl"
        before = log.read_bytes()

        # The disk fills up: refused at once, with the reason, and nothing reaches upstream.
        _fill(small_disk)
        code, secs, body = agent.get(f"/v1/{marker}-full")
        assert code == "403", (code, body)
        assert "audit" in body and "disk is full" in body, body
        assert "free space" in body, body  # the hint: how to make it pass again
        assert secs < 5, secs
        assert not [r for r in upstream.records if f"{marker}-full" in r.path]
        # Nothing written before was lost or cut: the log starts with what it held.
        assert log.read_bytes().startswith(before)

        # Space again: requests pass (and are recorded) without a restart.
        filler.unlink()
        assert agent.get_again(f"/v1/{marker}-after-full") == "200"

        # The egress's file size limit reached: the same refusal.
        pid = json.loads(bb(["info", slug], env, tmp_path).stdout)["pids"]["egress"]
        size = log.stat().st_size
        subprocess.run(["prlimit", f"--pid={pid}", f"--fsize={size + 200}:"], check=True)
        code, secs, body = agent.get(f"/v1/{marker}-limit")
        assert code == "403" and "file size limit" in body and secs < 5, (code, body)
        assert not [r for r in upstream.records if f"{marker}-limit" in r.path]
        subprocess.run(["prlimit", f"--pid={pid}", "--fsize=unlimited:"], check=True)
        assert agent.get_again(f"/v1/{marker}-after-limit") == "200"

        (ws / "stop").touch()
        proc.communicate(timeout=60)
    finally:
        filler.unlink(missing_ok=True)
        (ws / "stop").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            bb(["gc"], env, tmp_path)  # a failed test leaves no sidecar running

    # Nothing lost: every request that reached upstream is on record, the chain intact.
    r = bb(["logs", "--verify", slug], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    paths = [json.loads(line).get("path", "") for line in log.read_text().splitlines()]
    for i in range(3):
        assert f"/v1/{marker}-before-{i}" in paths
    assert f"/v1/{marker}-after-full" in paths and f"/v1/{marker}-after-limit" in paths
    sent = [q.path for q in upstream.records if marker in q.path]
    assert all(p in paths for p in sent), (sent, paths)
    assert bb(["rm", slug], env, tmp_path).returncode == 0
