"""`bot-bottle exec` on a microVM: the framing (images/guest/exec_service.py), the
command the guest's service runs (the agent's isolation), and the host's client
against a fake guest on a real Unix socket, honest and hostile: whatever the guest
sends, the client takes bytes for the terminal and an exit code, nothing more."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_bottle import unix_socket
from bot_bottle.backends.microvm import exec_client
from bot_bottle.errors import StateError
from bot_bottle.images.guest.exec_service import (
    ERR,
    EXIT,
    FRAME,
    IN,
    IN_EOF,
    OUT,
    REQUEST,
    Frames,
    command,
    frame,
)


def test_frames_split_anywhere_are_put_back_together() -> None:
    data = frame(OUT, b"hello") + frame(EXIT, b"3")
    frames = Frames()
    got = [f for i in range(len(data)) for f in frames.feed(data[i : i + 1])]
    assert got == [(OUT, b"hello"), (EXIT, b"3")]


def test_an_oversized_frame_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(ValueError):
        Frames().feed(FRAME.pack(OUT, 1 << 31))


def test_the_command_runs_as_the_agent_with_nothing_of_the_services() -> None:
    argv = command(["id", "-u"], True, "xterm", "1000", "1001", 7)
    drop = argv[argv.index("/usr/bin/setpriv") :]
    assert "/sys/fs/cgroup/agent/cgroup.procs" in argv[3]  # joins the agent's cgroup first
    session = argv[argv.index("/usr/bin/setsid") :]
    assert session[:2] == ["/usr/bin/setsid", "-c"]  # its own session, the pty its terminal
    assert drop[1:7] == ["--reuid=1000", "--regid=1001", "--clear-groups", "--no-new-privs",
                         "--inh-caps=-all", "--bounding-set=-all"]  # fmt: skip
    # The agent's seccomp filter, from the descriptor handed over, loaded before the drop:
    # no process of the agent's uid runs without it.
    confine = argv[argv.index("/usr/bin/python3") :]
    assert confine[:7] == ["/usr/bin/python3", "-I", "-S", "/run/bot-bottle/confine.py", "7", "--",
                           "/usr/bin/setpriv"]  # fmt: skip
    assert drop[7:9] == ["/usr/bin/env", "-i"]  # the agent's env.sh, not root's environment
    assert argv[-3:] == ["xterm", "id", "-u"]


@contextlib.contextmanager
def _guest(tmp_path: Path, answer: bytes) -> Iterator[list[bytes]]:
    """A fake guest behind the bottle's exec socket: reads what the client sends until
    it sees the request, answers `answer` and ends its side, then records the rest."""
    listener = unix_socket.listen(tmp_path / "exec.sock")
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            frames = Frames()
            while not any(k == REQUEST for k, _ in frames.feed(conn.recv(65536))):
                pass
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)  # the guest's side ends here
            with contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    seen.append(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield seen
    finally:
        listener.close()


@contextlib.contextmanager
def _stdin(data: bytes) -> Iterator[None]:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    saved = os.dup(0)
    os.dup2(r, 0)
    os.close(r)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_output_and_exit_code_come_back(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    answer = frame(OUT, b"out\n") + frame(ERR, b"err\n") + frame(EXIT, b"7")
    with _guest(tmp_path, answer), _stdin(b""):
        assert exec_client.exec_in(tmp_path, "b", ["x"], tty=False) == 7
    out, err = capfd.readouterr()
    assert (out, err) == ("out\n", "err\n")


def test_stdin_goes_to_the_command_then_eof(tmp_path: Path) -> None:
    # The fake guest answers only once stdin has been sent in full.
    listener = unix_socket.listen(tmp_path / "exec.sock")
    got: list[tuple[int, bytes]] = []

    def serve() -> None:
        conn, _ = listener.accept()
        frames = Frames()
        with conn:
            while not got or got[-1][0] != IN_EOF:
                got.extend(frames.feed(conn.recv(65536)))
            conn.sendall(frame(EXIT, b"0"))

    threading.Thread(target=serve, daemon=True).start()
    with _stdin(b"piped in\n"):
        assert exec_client.exec_in(tmp_path, "b", ["cat"], tty=False) == 0
    listener.close()
    assert got[0][0] == REQUEST
    assert b"".join(p for k, p in got if k == IN) == b"piped in\n"


@pytest.mark.parametrize("answer", [
    FRAME.pack(OUT, 1 << 30) + b"x" * 100,  # an endless frame
    frame(EXIT, b"1000"),  # no exit code
    frame(EXIT, b"-1"),
    frame(OUT, b"half") + FRAME.pack(OUT, 10)[:3],  # the stream ends mid-frame
    b"",
])  # fmt: skip
def test_a_hostile_or_dying_guest_gives_255_and_a_message(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answer: bytes
) -> None:
    with _guest(tmp_path, answer), _stdin(b""):
        assert exec_client.exec_in(tmp_path, "b", ["x"], tty=False) == 255
    _, err = capfd.readouterr()
    assert "the bottle ended before the command did" in err and "Traceback" not in err


def test_a_bottle_not_running_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is not running"):
        exec_client.exec_in(tmp_path, "b", ["x"], tty=False)
    s = socket.socket(socket.AF_UNIX)  # a socket left behind, nobody listening
    s.bind(str(tmp_path / "exec.sock"))
    s.close()
    with pytest.raises(StateError, match="is not running"):
        exec_client.exec_in(tmp_path, "b", ["x"], tty=False)
