"""The git gate with an audit log whose disk is full (issue 14, item 4): a push is
refused before it is forwarded, with the reason, and goes through once the log can be
written again; the records already written stay a valid chain.

The log sits on a small tmpfs of its own (the gate's repositories do not), so the
refusal is the gate's check, not git failing to write its objects."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from git_gate_harness import git, make_agent, seed_bare, start_gate, stop_gate

from bot_bottle.sidecars.egress.audit import verify_chain

pytestmark = pytest.mark.integration


def _fill(disk: Path) -> Path:
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


def test_push_refused_while_the_audit_disk_is_full(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and mounting a small tmpfs needs root", pytrace=False)
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "auditfs"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        bare = seed_bare(tmp_path / "up" / "repo.git")
        (tmp_path / "gate").mkdir()
        (tmp_path / "gate" / "audit.jsonl").symlink_to(disk / "audit.jsonl")
        gate = start_gate(tmp_path / "gate", {"name": "origin", "url": bare.as_uri()})
        try:
            a = make_agent(gate, tmp_path)
            first = a.commit("a.txt", "one\n")
            assert a.try_git("push", "origin", "main").returncode == 0
            before = gate.audit.read_bytes()
            filler = _fill(disk)
            a.commit("b.txt", "two\n")
            p = a.try_git("push", "origin", "main")
            assert p.returncode != 0 and "disk is full" in p.stderr, p.stderr
            assert git("--git-dir", str(bare), "rev-parse", "main") == first  # not forwarded
            assert gate.audit.read_bytes().startswith(before)
            filler.unlink()
            p = a.try_git("push", "origin", "main")
            assert p.returncode == 0, p.stderr
            assert git("--git-dir", str(bare), "rev-parse", "main") == a.git("rev-parse", "HEAD")
            assert verify_chain(gate.audit) == (True, 0)
        finally:
            stop_gate(gate.proc)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
