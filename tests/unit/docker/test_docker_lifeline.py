"""The lifeline's mechanism, with real sockets: a connection the launcher never accepts
reads EOF once the launcher's listener is gone, however deep the state dir is."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from bot_bottle.backends.docker import lifeline


def test_holder_exits_when_the_listener_closes(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # past the 107-byte socket path limit
    deep.mkdir(parents=True)
    listener = lifeline.listen(deep)
    assert (deep / lifeline.NAME).stat().st_mode & 0o777 == 0o600
    holder = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", lifeline.HOLD, "launcher.sock", "ready"],
        cwd=deep, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        assert holder.poll() is None
        listener.close()
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    first = lifeline.listen(tmp_path)
    first.close()
    second = lifeline.listen(tmp_path)
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(tmp_path / lifeline.NAME))
    c.close()
    second.close()
