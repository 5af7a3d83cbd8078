"""An audit log that cannot take a record: the writer says why, a write cut short is
cut back (the chain stays valid), and the addon refuses requests meanwhile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from egress_unit_env import Env
from test_addon_hooks import denied, flow, run

from bot_bottle.sidecars.egress.audit import verify_chain

# Real failures: the process's own file size limit (RLIMIT_FSIZE), lowered in a child so
# the test runner's files are never subject to it.
WRITER = r"""
import resource, sys
from bot_bottle.sidecars.egress.audit import AuditWriter
path = sys.argv[1]
w = AuditWriter(path, "unit")
for i in range(3):
    w.write({"path": f"/before-{i}"})
assert w.problem() == "", w.problem()
before = open(path, "rb").read()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 40, hard))
assert "file size limit" in w.problem(), w.problem()
try:
    w.write({"path": "/cut-" + "x" * 200})
    raise SystemExit("a write past the limit succeeded")
except OSError:
    pass
assert open(path, "rb").read() == before, "a partial line was left behind"
assert "last write to the audit log failed" in w.problem(), w.problem()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
w.write({"path": "/after"})
assert w.problem() == "", w.problem()
print("ok")
"""


def test_a_write_cut_short_leaves_the_log_whole(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    r = subprocess.run([sys.executable, "-c", WRITER, str(log)], capture_output=True,
                       text=True, check=False)  # fmt: skip
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    assert verify_chain(log) == (True, 0)
    assert "/after" in log.read_text() and "/cut-" not in log.read_text()


def test_requests_are_refused_while_the_log_cannot_be_written(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env.writer, "problem", lambda: "the audit log's disk is full (3 KiB free)")
    text = denied(run(env, flow()), "audit")
    assert "disk is full" in text and "free space" in text, text
    monkeypatch.setattr(env.writer, "problem", lambda: "")
    f = run(env, flow())
    assert f.response is None  # forwarded


def test_a_record_that_cannot_be_written_does_not_break_the_hook(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(rec: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(env.writer, "write", fail)
    # A denial, whose record cannot be written: the agent still gets its 403.
    denied(run(env, flow("nowhere.test"), connect_host=None), "route")
