"""`bot-bottle exec` into a running microVM bottle: the host's client.

It connects to the bottle's exec socket (`<state dir>/exec.sock`, 0600, served by the
launcher, which opens a stream of its own to the guest's root service for each
connection: `channel.serve_exec`), sends the command and relays this terminal (or
stdin, stdout and stderr) to it in frames (`images/guest/exec_service.py`), until the
command's exit code comes back.

What crosses back is bytes for this terminal and an exit code, bounded frames only;
nothing the guest sends is ever a descriptor, a path or a command for the host. A guest
taken over (the service is root's there) could answer instead, and would choose no
more than what a shell in the bottle shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import threading
import tty as ttymod
from collections.abc import Sequence
from pathlib import Path

from bot_bottle.backends.namespace.exec_channel import LOST, connect
from bot_bottle.images.guest.exec_service import (
    ERR,
    EXIT,
    IN,
    IN_EOF,
    OUT,
    REQUEST,
    SIZE,
    WINSIZE,
    Frames,
    frame,
)


def exec_in(state_dir: Path, slug: str, argv: Sequence[str], *, tty: bool) -> int:
    """Run `argv` beside the agent in the guest; its exit code."""
    conn = connect(state_dir, slug, refused_means_stopped=True)
    with conn:
        rows, cols = terminal_size() if tty else (0, 0)
        req = {"op": "exec", "argv": list(argv), "tty": tty,
               "term": os.environ.get("TERM", ""), "rows": rows, "cols": cols}  # fmt: skip
        conn.sendall(frame(REQUEST, json.dumps(req).encode()))
        if tty:
            return _run_tty(conn)
        threading.Thread(target=_feed, args=(conn,), daemon=True).start()
        try:
            return _relay(conn, {})
        except KeyboardInterrupt:  # ^C: closing the stream hangs the command up
            return 130


def terminal_size() -> tuple[int, int]:
    try:
        rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 0, 0
    return rows, cols


def _run_tty(conn: socket.socket) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old = termios.tcgetattr(0)
    old_winch = signal.signal(signal.SIGWINCH, lambda _n, _f: _poke(wake_w))
    try:
        ttymod.setraw(0, termios.TCSANOW)  # keep what was typed ahead: it is for the command
        return _relay(conn, {0: "stdin", wake_r: "winch"})
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, old)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(wake_r)
        os.close(wake_w)


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"w")


def _feed(conn: socket.socket) -> None:
    """Our stdin into the command's, then EOF (a thread: stdin may be a regular file)."""
    with contextlib.suppress(OSError):
        while data := os.read(0, 65536):
            conn.sendall(frame(IN, data))
        conn.sendall(frame(IN_EOF))


def _relay(conn: socket.socket, inputs: dict[int, str]) -> int:
    """Frames from the guest to stdout and stderr, `inputs` (stdin, SIGWINCH) to it,
    until the exit code comes, or the stream ends without one (the bottle ended)."""
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, "guest")
    for fd, what in inputs.items():
        sel.register(fd, selectors.EVENT_READ, what)
    frames = Frames()
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "stdin":
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                    conn.sendall(frame(IN, data) if data else frame(IN_EOF))
                elif key.data == "winch":
                    os.read(key.fd, 64)
                    conn.sendall(frame(WINSIZE, SIZE.pack(*terminal_size())))
                else:
                    data = conn.recv(65536)
                    if not data:
                        return _lost()
                    for kind, payload in frames.feed(data):
                        if kind in (OUT, ERR):
                            _write_all(1 if kind == OUT else 2, payload)
                        elif kind == EXIT:
                            return _code(payload)
    except (ValueError, OSError):  # an oversized frame, a stream broken under us
        return _lost()
    finally:
        sel.close()


def _code(payload: bytes) -> int:
    text = payload.decode("ascii", errors="replace")
    return min(int(text), 255) if text.isdigit() and len(text) <= 3 else _lost()


def _lost() -> int:
    sys.stderr.write("\r\nbot-bottle exec: the bottle ended before the command did\r\n")
    return LOST


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
