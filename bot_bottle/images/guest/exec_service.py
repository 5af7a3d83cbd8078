"""The guest's root service for streams the host opens (`mux.py` starts one process per
stream, with the stream on its stdin): `bot-bottle exec`'s command, or the size of the
agent's terminal.

Only the host opens these streams (the guest's own OPENs are refused in the host's id
range and the host maps no sidecar to this port), and only the launcher does, for
`bot-bottle exec` run by the host user or for a SIGWINCH on the agent's terminal.

An exec'd command gets exactly the agent's isolation (`bottle.sh` starts the agent the
same way): the agent's uid and gid, no other groups, no capabilities, no-new-privs, the
agent's environment (`env.sh` on the provision disk) and working directory, its own
session; on a fresh pty when the host's stdin is a terminal, else on three pipes.

Wire format, both ways on the one stream: frames of kind (u8), length (u32), payload.
The host sends REQUEST first (JSON: `{"op": "exec", "argv": [...], "tty": bool, "term":
str, "rows": int, "cols": int}` or `{"op": "winsize"}`), then IN bytes, IN_EOF and
WINSIZE (rows, cols: u16 each). The guest sends OUT and ERR bytes, then EXIT (the exit
code in decimal) once the command ended and its output is drained.

Standard library only: the guest runs it on the root image's python3; the host's
client (`backends/microvm/exec_client.py`) imports the framing from here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Any

FRAME = struct.Struct(">BI")
REQUEST, IN, IN_EOF, WINSIZE, OUT, ERR, EXIT = range(1, 8)
SIZE = struct.Struct(">HH")
MAX_FRAME = 1 << 20  # what either end accepts in one frame; the other sends 64 KiB at most
DRAIN_AFTER_EXIT = 0.5  # output a background child may still be writing
FILES = "/run/bot-bottle/files"
BUSYBOX = "/run/bot-bottle/busybox"
CONFINE = "/run/bot-bottle/confine.py"
TERMINAL = "/dev/hvc0"  # the agent's (see bottle.sh)
# Sources the agent's environment in a shell started with none, sets exec's TERM (the
# host terminal's) when there is one, then runs the command.
SCRIPT = f'. {FILES}/env.sh || exit 126; [ -n "$1" ] && export TERM="$1"; shift; exec "$@"'


def frame(kind: int, payload: bytes = b"") -> bytes:
    return FRAME.pack(kind, len(payload)) + payload


class Frames:
    """Frames parsed from the bytes of a stream as they come (`feed`)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames `data` completes; ValueError for one larger than MAX_FRAME."""
        self._buf += data
        out = []
        while len(self._buf) >= FRAME.size:
            kind, length = FRAME.unpack_from(self._buf)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes")
            if len(self._buf) < FRAME.size + length:
                break
            out.append((kind, self._buf[FRAME.size : FRAME.size + length]))
            self._buf = self._buf[FRAME.size + length :]
        return out


def _set_size(fd: int, payload: bytes) -> None:
    """TIOCSWINSZ: the kernel then sends SIGWINCH to the terminal's foreground group."""
    if len(payload) == SIZE.size:
        rows, cols = SIZE.unpack(payload)
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _agent() -> tuple[str, str]:
    """The agent's uid and gid, from the kernel command line (`bb.user=UID:GID`)."""
    with open("/proc/cmdline") as f:
        for arg in f.read().split():
            if arg.startswith("bb.user="):
                uid, _, gid = arg[len("bb.user=") :].partition(":")
                if uid.isdigit() and gid.isdigit():
                    return uid, gid
    raise SystemExit("no bb.user on the kernel command line")


def _cwd() -> str:
    try:
        with open(f"{FILES}/shares") as f:
            shared = "workspace" in f.read().split()
    except OSError:
        shared = False
    return "/workspace" if shared and os.path.isdir("/workspace") else "/home/agent"


AGENT_CGROUP = "/sys/fs/cgroup/agent"


def command(argv: list[str], tty: bool, term: str, uid: str, gid: str, filter_fd: int) -> list[str]:
    drop = ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]  # fmt: skip
    # `setsid -c`: the pty becomes the command's controlling terminal, so ^C reaches it.
    session = ["/usr/bin/setsid", "-c"] if tty else ["/usr/bin/setsid"]
    # First into the agent's cgroup (stage 2's, root's), so that the `cgroup.kill` at the
    # agent's exit ends what an exec left running too.
    join = [BUSYBOX, "sh", "-c", f'echo $$ > {AGENT_CGROUP}/cgroup.procs 2>/dev/null; exec "$@"',
            "join"]  # fmt: skip
    # The agent's seccomp filter (`filter_fd`), loaded as root before the drop, as
    # bottle.sh loads it for the agent: no process of the agent's uid runs without it.
    confine = ["/usr/bin/python3", "-I", "-S", CONFINE, str(filter_fd), "--"]
    return [*join, *session, *confine, *drop, "/usr/bin/env", "-i", BUSYBOX, "sh", "-c", SCRIPT,
            "sh", term, *argv]  # fmt: skip


class Session:
    """One exec: the command's process, its outputs and a writer for its stdin."""

    def __init__(self, conn: socket.socket, req: dict[str, Any]) -> None:
        argv = [str(a) for a in req.get("argv") or ()]
        self.tty = bool(req.get("tty"))
        term = str(req.get("term") or "") if self.tty else ""
        uid, gid = _agent()
        self.conn = conn
        # Above 2: the service closed its stdin (`__main__`), so the file would be fd 0,
        # which the command's stdin replaces (the filter read was then a pipe's EOF).
        opened = os.open(f"{FILES}/seccomp.bpf", os.O_RDONLY | os.O_CLOEXEC)
        filter_fd = fcntl.fcntl(opened, fcntl.F_DUPFD_CLOEXEC, 3)
        os.close(opened)
        cmd = command(argv, self.tty, term, uid, gid, filter_fd)
        try:
            if self.tty:
                master, slave = os.openpty()
                # The pty stays root's (0620): the agent's processes cannot open it, not
                # even through /proc/PID/fd, so what the operator types there is the
                # command's.
                rows, cols = int(req.get("rows") or 0), int(req.get("cols") or 0)
                _set_size(master, SIZE.pack(min(rows, 65535), min(cols, 65535)))
                self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                                             cwd=_cwd(), env={}, pass_fds=(filter_fd,))  # fmt: skip
                os.close(slave)
                self.stdin = master
                self.outputs = {master: OUT}
            else:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, cwd=_cwd(), env={},
                                             pass_fds=(filter_fd,))  # fmt: skip
                assert self.proc.stdin and self.proc.stdout and self.proc.stderr
                self.stdin = self.proc.stdin.fileno()
                self.outputs = {self.proc.stdout.fileno(): OUT, self.proc.stderr.fileno(): ERR}
        finally:
            os.close(filter_fd)
        self.typed: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._feed, daemon=True).start()

    def _feed(self) -> None:
        """The host's stdin into the command's; a thread, as the command may not read."""
        try:
            while (data := self.typed.get()) is not None:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.stdin, view) :]
        except OSError:
            return
        if not self.tty:
            os.close(self.stdin)

    def hang_up(self) -> None:
        """The host went away: the command's session goes too."""
        for sig in (signal.SIGHUP, signal.SIGKILL):
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, sig)
            time.sleep(0.1)

    def relay(self, frames: Frames) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.conn, selectors.EVENT_READ, "host")
        for fd in self.outputs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "out")
        pidfd = os.pidfd_open(self.proc.pid)
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        deadline: float | None = None  # set when the command exited: drain until then
        try:
            while deadline is None or (self.outputs and time.monotonic() < deadline):
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                for key, _ in sel.select(wait):
                    if key.data == "exit":
                        sel.unregister(pidfd)
                        deadline = time.monotonic() + DRAIN_AFTER_EXIT
                    elif key.data == "out":
                        self._output(sel, key.fd)
                    elif not self._from_host(sel, frames):
                        self.hang_up()
                        return
            code = self.proc.wait()
            self.conn.sendall(frame(EXIT, str(128 - code if code < 0 else code).encode()))
        except OSError:  # the host's end broke under us: as good as gone
            self.hang_up()

    def _output(self, sel: selectors.BaseSelector, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: a pty whose slave is closed everywhere
            data = b""
        if not data:
            sel.unregister(fd)
            del self.outputs[fd]
            return
        self.conn.sendall(frame(self.outputs[fd], data))

    def _from_host(self, sel: selectors.BaseSelector, frames: Frames) -> bool:
        data = self.conn.recv(65536)
        if not data:
            return False
        for kind, payload in frames.feed(data):
            self.take(kind, payload)
        return True

    def take(self, kind: int, payload: bytes) -> None:
        """One frame from the host."""
        if kind == IN:
            self.typed.put(payload)
        elif kind == IN_EOF:
            self.typed.put(None)
        elif kind == WINSIZE and self.tty:
            _set_size(self.stdin, payload)


def serve(conn: socket.socket) -> None:
    frames = Frames()
    pending: list[tuple[int, bytes]] = []
    while not pending:
        data = conn.recv(65536)
        if not data:
            return
        pending = frames.feed(data)
    (kind, payload), rest = pending[0], pending[1:]
    req = json.loads(payload) if kind == REQUEST else None
    if not isinstance(req, dict):
        return
    if req.get("op") == "exec":
        session = Session(conn, req)
        for k, p in rest:
            session.take(k, p)
        session.relay(frames)
    elif req.get("op") == "winsize":
        # The agent's terminal takes each size the host sends (its window was resized).
        fd = os.open(TERMINAL, os.O_RDWR | os.O_NOCTTY)
        while True:
            for k, p in rest:
                if k == WINSIZE:
                    _set_size(fd, p)
            if not (data := conn.recv(4096)):
                return
            rest = frames.feed(data)


if __name__ == "__main__":
    with socket.socket(fileno=os.dup(0)) as stream:
        os.close(0)
        try:
            serve(stream)
        except (OSError, ValueError) as e:
            print(f"bot-bottle-guest: exec service: {e}", file=sys.stderr)
