"""`bot-bottle exec` into a running namespace bottle: the host's side of the channel.

The launcher binds a Unix socket in the bottle's state dir (which only the host user
reaches; it is never bound into the sandbox) and hands the listening descriptor to the
in-bottle forwarder. `exec` connects, sends the command with the slave end of a fresh
pty (or the ends of three pipes) and relays between them and this terminal. The
command is forked by the forwarder, inside the sandbox, so it has what the agent has
and nothing more: the host never joins the bottle's namespaces, reads its files or
looks in its /proc, so nothing the agent planted (in HOME, in /proc, on the socket)
reaches a process that runs as the host user.

What crosses back is bytes for this terminal and one `exit N` line. The agent could
take over the forwarder and answer instead; it would then run the command (in its
own sandbox, where it can run anything anyway) and choose what this terminal shows
and the exit code, which is no more than a shell in the bottle shows. No descriptor
is ever accepted from the bottle.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
import termios
import threading
import time
import tty as ttymod
from collections.abc import Sequence
from pathlib import Path

from bot_bottle import unix_socket
from bot_bottle.errors import StateError

SOCKET_NAME = "exec.sock"
START_TIMEOUT = 10.0  # for the forwarder to fork the command
DRAIN_AFTER_EXIT = 1.0  # output still in flight when `exit N` arrives
LOST = 255  # the bottle ended under the command: no exit code to pass on


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def listen(state_dir: Path) -> int:
    """A fresh listening socket at the bottle's exec path; its descriptor, for the
    sandbox (the caller hands it over and no longer owns it)."""
    return unix_socket.listen(socket_path(state_dir)).detach()


def _not_running(slug: str) -> StateError:
    return StateError(f"bottle {slug} is not running (no agent to exec beside)",
                      f"`bot-bottle ls` shows its status; `bot-bottle resume {slug}` "
                      "starts a kept one")  # fmt: skip


def connect(state_dir: Path, slug: str, *, refused_means_stopped: bool = False) -> socket.socket:
    """A connection to the bottle's exec socket (mode 0600), or the `StateError` that
    says why there is none: not running, gone, another user's. A refused connection is
    a dead in-bottle forwarder here (the socket is handed into the bottle); where the
    launcher itself listens (microvm), it is a bottle no longer running."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        unix_socket.connect(conn, socket_path(state_dir))
    except FileNotFoundError:
        conn.close()
        raise _not_running(slug) from None
    except ConnectionRefusedError:  # the in-bottle side is gone, the launcher may not be
        conn.close()
        if refused_means_stopped:
            raise _not_running(slug) from None
        raise StateError(f"bottle {slug} does not answer exec: its agent has ended, or "
                         "stopped the forwarder that runs exec's commands in the bottle",
                         f"`bot-bottle ls` shows its status; `bot-bottle stop {slug}` "
                         "and `resume` it to get a fresh one") from None  # fmt: skip
    except PermissionError:
        conn.close()
        raise StateError(f"bottle {slug} was started by another user, and only that user "
                         "can exec in it", "run `bot-bottle exec` as the user who ran "
                         "`bot-bottle run`") from None  # fmt: skip
    return conn


def exec_in(state_dir: Path, slug: str, argv: Sequence[str], *, tty: bool) -> int:
    """Run `argv` (empty: the bottle's shell) beside the agent; its exit code."""
    conn = connect(state_dir, slug)
    conn.settimeout(START_TIMEOUT)
    with conn:
        if tty:
            return _run_tty(conn, slug, argv)
        try:
            return _run_piped(conn, slug, argv)
        except KeyboardInterrupt:  # ^C: closing the connection hangs the command up
            return 130


def _request(conn: socket.socket, slug: str, argv: Sequence[str], tty: bool,
             fds: list[int]) -> None:  # fmt: skip
    msg = json.dumps({"argv": list(argv), "tty": tty, "term": os.environ.get("TERM", "")})
    socket.send_fds(conn, [msg.encode()], fds)
    if _line(conn) != "started":
        raise StateError(f"bottle {slug} did not start the command",
                         "the bottle may be ending; `bot-bottle ls` shows its status")  # fmt: skip


def _line(conn: socket.socket) -> str:
    """One short line from the bottle (bounded: it may be the agent talking)."""
    buf = b""
    try:
        while not buf.endswith(b"\n") and len(buf) < 64:
            chunk = conn.recv(1)
            if not chunk:
                break
            buf += chunk
    except TimeoutError:
        return ""
    return buf.decode(errors="replace").strip()


def _exit_code(line: str) -> int | None:
    word, _, num = line.partition(" ")
    if word == "exit" and num.isdigit():
        return min(int(num), 255)
    return None


def _run_tty(conn: socket.socket, slug: str, argv: Sequence[str]) -> int:
    master, slave = os.openpty()
    try:
        _copy_winsize(master)
        _request(conn, slug, argv, True, [slave])
    finally:
        os.close(slave)
    old = termios.tcgetattr(0)
    old_winch = signal.signal(signal.SIGWINCH, lambda _n, _f: _copy_winsize(master))
    try:
        ttymod.setraw(0, termios.TCSANOW)  # keep what was typed ahead: it is for the command
        return _relay(conn, {0: master}, {master: 1})
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, old)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)


def _run_piped(conn: socket.socket, slug: str, argv: Sequence[str]) -> int:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        _request(conn, slug, argv, False, [in_r, out_w, err_w])
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    # A thread for stdin: it may be a regular file, which select cannot watch.
    threading.Thread(target=_feed, args=(in_w,), daemon=True).start()
    try:
        return _relay(conn, {}, {out_r: 1, err_r: 2})
    finally:
        for fd in (out_r, err_r):
            os.close(fd)


def _feed(dst: int) -> None:
    """Our stdin into the command's, then EOF."""
    try:
        while data := os.read(0, 65536):
            _write_all(dst, data)
    except OSError:
        pass
    finally:
        os.close(dst)


def _relay(conn: socket.socket, inputs: dict[int, int], outputs: dict[int, int]) -> int:
    """Copy `inputs` (ours -> the bottle's) and `outputs` (the bottle's -> ours) until
    the command's outputs end and its exit code is in, or the bottle goes away."""
    sel = selectors.DefaultSelector()
    for src in inputs:
        sel.register(src, selectors.EVENT_READ, "in")
    for src in outputs:
        sel.register(src, selectors.EVENT_READ, "out")
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, "ctl")
    code: int | None = None
    ctl = b""
    open_outputs = set(outputs)
    deadline: float | None = None
    while open_outputs or code is None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = sel.select(timeout)
        if deadline is not None and time.monotonic() >= deadline:
            break
        for key, _ in events:
            fd = key.fd
            if key.data == "ctl":
                try:
                    data = conn.recv(64)
                except BlockingIOError:
                    continue
                ctl += data
                if not data or b"\n" in ctl or len(ctl) >= 64:
                    sel.unregister(conn)
                    code = _exit_code(ctl.decode(errors="replace").strip())
                    if code is None:
                        code = -1  # the bottle went away: no code to pass on
                    deadline = time.monotonic() + DRAIN_AFTER_EXIT
            elif key.data == "in":
                data = _read(fd)
                if not data:
                    sel.unregister(fd)
                    continue
                with contextlib.suppress(OSError):
                    _write_all(inputs[fd], data)
            else:
                data = _read(fd)
                if not data:
                    sel.unregister(fd)
                    open_outputs.discard(fd)
                    continue
                _write_all(outputs[fd], data)
    sel.close()
    if code is None or code < 0:
        sys.stderr.write("\r\nbot-bottle exec: the bottle ended before the command did\r\n")
        return LOST
    return code


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError as e:
        if e.errno == errno.EIO:  # a pty master whose slave is closed everywhere
            return b""
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_winsize(master: int) -> None:
    """This terminal's size onto the command's pty (and again on every SIGWINCH)."""
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
