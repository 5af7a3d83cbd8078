"""The notify hook runs with the request on stdin only, and a hook that hangs is
killed with its whole process group after its timeout."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot_bottle.policy.supervise import Ask
from bot_bottle.state.request_notifier import RequestNotifier
from bot_bottle.state.requests import RequestDir
from bot_bottle.state.user_config import NotifyHook


def _notifier(
    tmp_path: Path, script: str, timeout: float = 5
) -> tuple[RequestNotifier, RequestDir]:
    asks = RequestDir(tmp_path / "requests", "b")
    hook = NotifyHook(("/bin/sh", "-c", script, "hook", str(tmp_path)), timeout)
    return RequestNotifier(hook, "b-slug", asks, tmp_path / "notify.log"), asks


def test_stdin_only(tmp_path: Path) -> None:
    n, asks = _notifier(tmp_path, 'cat > "$1/in.json"; echo "$@" > "$1/argv"; env > "$1/env"')
    rec = asks.create(Ask("question", question="$(touch /tmp/pwned) may I?"))
    assert n.run_hook(rec) == 0
    got = json.loads((tmp_path / "in.json").read_text())
    assert got["id"] == rec.id and got["ask"]["question"].startswith("$(touch")
    assert "may I" not in (tmp_path / "argv").read_text() + (tmp_path / "env").read_text()


def test_a_hanging_hook_is_killed_with_its_children(tmp_path: Path) -> None:
    n, asks = _notifier(tmp_path, 'sleep 60 & echo $! > "$1/child"; wait', timeout=0.5)
    rec = asks.create(Ask("question", question="q"))
    t0 = time.monotonic()
    assert n.run_hook(rec) is None
    assert time.monotonic() - t0 < 5
    child = int((tmp_path / "child").read_text())
    time.sleep(0.1)
    assert (
        not os.path.exists(f"/proc/{child}")
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )
    assert "killed after 0.5 s" in (tmp_path / "notify.log").read_text()


def test_each_new_request_once(tmp_path: Path) -> None:
    n, asks = _notifier(tmp_path, 'cat >> "$1/all.jsonl"')
    asks.create(Ask("question", question="before the launch"))
    n = RequestNotifier(n.hook, "b-slug", asks, tmp_path / "notify.log")
    n.start()
    try:
        rec = asks.create(Ask("question", question="q"))
        end = time.monotonic() + 10
        while not (tmp_path / "all.jsonl").exists() and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.2)  # two more polls: still once
    finally:
        n.stop()
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [rec.id]
