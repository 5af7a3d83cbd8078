"""The agent's terminal follows the size of the launcher's: on SIGWINCH the launcher
sends the new size over a stream of its own to the guest's service
(`images/guest/exec_service.py`), which sets it on /dev/hvc0; the guest's kernel then
signals the agent's foreground process group, as a local terminal would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator

from bot_bottle.backends.microvm.exec_client import terminal_size
from bot_bottle.images.guest.exec_service import REQUEST, SIZE, WINSIZE, frame
from bot_bottle.images.guest.mux import SERVICE_PORT, Mux


@contextlib.contextmanager
def following_size(mux: Mux) -> Iterator[None]:
    """While inside, each SIGWINCH resizes the guest's terminal (the stream to the
    guest's service is opened at the first one: a window never resized costs nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers are the main thread's alone
        return
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old = signal.signal(signal.SIGWINCH, lambda _n, _f: _poke(wake_w))
    threading.Thread(target=_follow, args=(mux, wake_r), daemon=True, name="bb-vm-winch").start()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, old)
        os.close(wake_w)  # ends `_follow`


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"w")


def _follow(mux: Mux, wake: int) -> None:
    stream: socket.socket | None = None
    try:
        while os.read(wake, 64):
            if stream is None:
                stream, guest_end = socket.socketpair()
                mux.add(guest_end, SERVICE_PORT)
                stream.sendall(frame(REQUEST, b'{"op": "winsize"}'))
            stream.sendall(frame(WINSIZE, SIZE.pack(*terminal_size())))
    except OSError:
        pass
    finally:
        os.close(wake)
        if stream is not None:
            stream.close()
