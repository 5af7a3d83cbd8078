"""A local bare repository as upstream, named by a `file://` URL or a plain path: the
gate forwards accepted pushes to it (git's quarantine environment, which the hook runs
in, must not reach the upstream's own receive-pack) and still refuses secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_gate_harness import git, make_agent, seed_bare, start_gate, stop_gate

pytestmark = pytest.mark.integration

KEY = "AKIA" + "Q7R2ZK4WXM9PLT3B"


@pytest.mark.parametrize("form", ["file-url", "path"])
def test_push_to_a_local_upstream(form: str, tmp_path: Path) -> None:
    bare = seed_bare(tmp_path / "up" / "repo.git")
    url = bare.as_uri() if form == "file-url" else str(bare)
    (tmp_path / "gate").mkdir()
    remote = {"name": "origin", "url": url, "protected_refs": ["main"]}
    gate = start_gate(tmp_path / "gate", remote)
    try:
        a = make_agent(gate, tmp_path)
        head = a.commit("src/app.py", "print('hi')\n", "clean change")
        p = a.try_git("push", "origin", "main")
        assert p.returncode == 0, p.stderr
        assert git("--git-dir", str(bare), "rev-parse", "main") == head
        # The gate's own quarantine stays out of upstream: no incoming-* directory left.
        assert not list((bare / "objects").glob("incoming-*"))
        a.commit("leak.env", f"key={KEY}\n", "oops")
        p = a.try_git("push", "origin", "HEAD:refs/heads/agent/leak")
        assert p.returncode != 0 and "leak.env:1: aws-access-key" in p.stderr, p.stderr
        assert git("--git-dir", str(bare), "for-each-ref", "refs/heads/agent") == ""
    finally:
        stop_gate(gate.proc)
