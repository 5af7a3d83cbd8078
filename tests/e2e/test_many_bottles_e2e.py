"""20 bottles launched at once (issue 14, item 4), 18 in namespaces and 2 on Docker:
every one starts, its agent's request goes out through its own egress and is on its
own bottle's record (no slug, socket or port shared), and when they are done no lock is
held and nothing runs on."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, trust
from filelock import FileLock, Timeout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

from bot_bottle.sidecars.egress.audit import read_audit, verify_chain

pytestmark = pytest.mark.e2e

N = 20
ON_DOCKER = 2  # what the 2-core machine takes beside 18 namespace bottles


def test_twenty_bottles_at_once(tmp_path: Path, upstream: Upstream, docker_ready: None) -> None:
    # Each agent names its request with a fresh id and fails unless it got a 200.
    agent = (
        "id=$(cat /proc/sys/kernel/random/uuid); "
        "code=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "
        f"https://api.example.test:{upstream.port}/v1/many-$id); "
        'echo "$id $code"; [ "$code" = 200 ]'
    )
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider: {{template: command, command: {json.dumps(["sh", "-c", agent])}}}
    egress:
      hosts: {{api.example.test: 127.0.0.1}}
      upstream_ca: {upstream.ca_path}
      ssrf_ip_allowlist: [127.0.0.1/32]
      routes:
        - host: api.example.test
          port: {upstream.port}
    workspace: none
    backend: namespace
  d:
    extends: b
    backend: docker
agents:
  a: {{bottle: b}}
  d: {{bottle: d}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    home = Path(env["BOT_BOTTLE_HOME"])
    t0 = time.monotonic()
    pipe = subprocess.PIPE
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot_bottle", "run", "d" if i < ON_DOCKER else "a", "-y"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            text=True,
        )
        for i in range(N)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, 150 - (time.monotonic() - t0)))
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    elapsed = time.monotonic() - t0
    print(f"{N} bottles at once: all done in {elapsed:.1f} s")

    # All started, and every agent's request went out and came back.
    failed = [(rc, err[-600:]) for rc, _, err in results if rc != 0]
    assert failed == [], failed
    ids = [out.split()[0] for _, out, _ in results]
    assert len(set(ids)) == N
    sent = sorted(r.path for r in upstream.records if r.path.startswith("/v1/many-"))
    assert sent == sorted(f"/v1/many-{i}" for i in ids)
    # One slug each, and each bottle's own egress recorded exactly its agent's request
    # (retired bottles' logs are kept under logs/), the chain intact.
    logs = sorted((home / "logs").glob("*.jsonl"))
    assert len(logs) == N, logs
    assert sum(log.stem.startswith("d-") for log in logs) == ON_DOCKER  # slugs: agent-...
    seen = []
    for log in logs:
        assert verify_chain(log) == (True, 0), log
        paths = [r.get("path") for r in read_audit(log) if r.get("kind") == "request"]
        assert len(paths) == 1 and paths[0].startswith("/v1/many-"), (log, paths)
        seen.append(paths[0])
    assert sorted(seen) == sent
    # The Docker bottles' containers and volumes went with them.
    for log in logs:
        r = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=bot-bottle.slug={log.stem}"],
                           capture_output=True, text=True, check=True)  # fmt: skip
        assert r.stdout.strip() == "", log.stem
    # No lock is left held, and nothing runs on in the state dirs.
    for lock in (home / "locks").glob("*.lock"):
        try:
            with FileLock(str(lock), timeout=0):
                pass
        except Timeout:
            pytest.fail(f"{lock} is still held")
    assert list((home / "bottles").glob("*")) == []
    real = os.path.realpath(home)
    for d in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if d.name.isdigit():
                assert not os.readlink(d / "cwd").startswith(real + "/"), d
