"""`bot-bottle watch` driven in tmux as an operator would: a real bottle's agent asks
for a route, the request shows up on the live screen, `g` grants it, and the agent's
next request reaches the upstream. The screen survives a resize to 40 columns (the
request stays readable, nothing crashes) and `q` leaves it with exit code 0."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import check_bwrap, wait_for
from tmux_session import EXIT_MARK, TmuxSession

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_supervise_e2e import AGENT, start

pytestmark = pytest.mark.e2e

# The agent stays until the test has seen its traffic on the screen.
HOLDING_AGENT = (
    AGENT
    + """
while not os.path.exists("/workspace/release"):
    time.sleep(0.1)
"""
)


def test_watch_shows_a_pending_request_and_grants_it(tmp_path: Path, upstream: object) -> None:
    check_bwrap()
    env, ws, proc = start(tmp_path, "namespace", upstream, HOLDING_AGENT)  # type: ignore[arg-type]
    term = TmuxSession(tmp_path, "watch")
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        # A slow refresh: within it, only SIGWINCH can redraw the screen at a new size.
        term.start_bb(["watch", "--interval", "8"], env, tmp_path)
        term.wait(rid)
        screen = term.screen()
        assert "Pending requests (1)" in screen, screen
        assert "fetch the data the task needs" in screen, screen
        assert "running" in screen, screen
        # A narrow terminal: the request is still there to be read and answered.
        term._tmux("resize-window", "-t", term.name, "-x", "40", "-y", "30")
        # Redrawn, not just cropped: the request's route wraps onto a line of its own.
        term.wait("(GET)", timeout=3)
        narrow = term.screen()
        assert rid in narrow and "Traceback" not in narrow, narrow
        assert all(len(line.rstrip()) <= 40 for line in narrow.splitlines()), narrow
        term.keys("1", "g")
        term.wait(f"granted {rid}")
        term._tmux("resize-window", "-t", term.name, "-x", "160", "-y", "45")
        term.wait("Pending requests (0)")
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        term.wait("GET api.example.test/v1/data 200", timeout=30)  # recent traffic
        (ws / "release").write_text("")
        proc.communicate(timeout=60)
        term.keys("q")
        assert term.wait(EXIT_MARK + "0", EXIT_MARK) == EXIT_MARK + "0", term.screen()
    finally:
        term.kill()
        if proc.poll() is None:
            proc.kill()
    assert result["answer"]["status"] == "granted", result
    assert result["after"][0] == 200, result
    assert [q.path for q in upstream.records] == ["/v1/data"]  # type: ignore[attr-defined]
