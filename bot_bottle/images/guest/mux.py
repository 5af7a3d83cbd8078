"""Many TCP connections over the one byte stream of the microVM's host channel.

The guest has no network device; its only way out is one virtio serial port that QEMU
carries to a host Unix socket. In the guest, `python3 mux.py guest DEVICE PORT...`
listens on `127.0.0.1:PORT` (the same proxy and git-gate ports the other backends
give the agent) and carries each accepted connection as a stream of frames; on the
host, `Mux` with an `opener` connects each stream to the sidecar socket for its port.
A port the host does not map is refused (its stream closed at once): the host
decides where every stream may go, never the guest.

Frame: stream id (u32), kind (u8), payload length (u16), payload. OPEN carries the
port; DATA bytes (at most CHUNK, so a frame is one write of the guest's port, whose
driver takes at most 32 KiB a write: a writer that ignored the short count lost
bytes, which once looked like a stall of 64 KiB writes); EOF that one direction ended
(the receiver shuts its socket's write side; the stream is freed once both have);
CLOSE that the stream is over both ways (a reset or failed socket, a refusal, a
cut-off); CREDIT (u32) that the sender may send that many more DATA bytes.

Flow control, per stream as in SSH or HTTP/2: each side may have at most WINDOW
bytes of DATA in flight on a stream. The frame reader never blocks on a socket: DATA
goes to the stream's queue, written out by the stream's own thread, which grants the
credit back as its socket takes the bytes; a pump reads its socket only as far as
its credit, so a peer that stops reading stalls its own stream and nothing else. A
peer that sends beyond its window is cut off (CLOSE), so a stream never holds more
than WINDOW bytes, and at most `max_streams` streams are open (more are refused).
Frames the reader must send (CREDIT, CLOSE) go through a queue and a thread of their
own: the reader never waits on the channel either, so two ends both writing cannot
deadlock. A peer that floods those without reading the channel loses the channel.

Standard library only: the guest runs it on the root image's python3, as one file
(hence past 300 lines: framing, flow control and both ends belong together).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

OPEN, DATA, EOF, CLOSE, CREDIT = 1, 2, 3, 4, 5
HEADER = struct.Struct(">IBH")
AMOUNT = struct.Struct(">I")
CHUNK = 32768 - HEADER.size
WINDOW = 256 * 1024
MAX_STREAMS = 1024
# Stream ids: the guest numbers the streams it opens from 1, the host from HOST_FIRST,
# so the two never collide. The host opens only SERVICE_PORT (`bot-bottle exec` and the
# agent's terminal size: images/guest/exec_service.py), a port no sidecar has.
HOST_FIRST = 1 << 31
SERVICE_PORT = 0
READY = "/run/bot-bottle/mux.ready"
SERVICE = "/run/bot-bottle/exec_service.py"


class _Stream:
    def __init__(self, sid: int, conn: socket.socket | None, window: int) -> None:
        self.sid, self.conn = sid, conn
        self.cv = threading.Condition()
        self.credit = window  # DATA bytes we may still send
        self.allowed = window  # DATA bytes the peer may still send us
        self.taken = 0  # bytes our socket took that we have not granted back yet
        self.writing = False  # the writer holds bytes it took off the queue
        self.queue: deque[bytes] = deque()
        self.eof = False  # the peer's direction ended (write ours out, then shut it)
        self.closed = False
        self.ended = 0  # directions finished: freed at 2
        # Threads using `conn`; the last one out closes it. Closing it under a thread
        # that is about to read could let that read hit a new socket on the same fd.
        self.users = 1


class Mux:
    """One end of the channel: `read`/`write` move raw bytes on it; `opener` (host
    side) turns a guest's OPEN into a socket, or None to refuse it."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        write: Callable[[bytes], int],
        opener: Callable[[int], socket.socket | None] | None = None,
        *,
        window: int = WINDOW,
        max_streams: int = MAX_STREAMS,
        first: int = 1,
    ) -> None:
        self._read, self._write, self._opener = read, write, opener
        self._window, self._max = window, max_streams
        self._wlock = threading.Lock()  # one frame at a time on the channel
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._next = first
        self._host = first >= HOST_FIRST  # which half of the ids is ours
        self._buf = bytearray()
        self._out = threading.Condition()
        self._control: deque[bytes] = deque()
        self._credits: dict[int, int] = {}
        self._done = False
        threading.Thread(target=self._flush_control, daemon=True).start()

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def send(self, sid: int, kind: int, payload: bytes = b"") -> None:
        self._put(HEADER.pack(sid, kind, len(payload)) + payload)

    def _put(self, frame: bytes) -> None:
        with self._wlock:
            while frame:  # the guest's port takes at most 32 KiB a write
                frame = frame[self._write(frame) :]

    def add(self, conn: socket.socket, port: int) -> None:
        """A guest connection to `port`: announce it and pump it (or, past the stream
        limit, close it)."""
        with self._lock:
            if len(self._streams) >= self._max or self._done:
                conn.close()
                return
            conn.settimeout(None)  # the direct write below must never wait
            sid, self._next = self._next, self._after(self._next)
            self._streams[sid] = s = _Stream(sid, conn, self._window)
            s.users = 2
        self.send(sid, OPEN, str(port).encode())
        threading.Thread(target=self._pump, args=(s,), daemon=True).start()
        threading.Thread(target=self._write_out, args=(s,), daemon=True).start()

    def _after(self, sid: int) -> int:
        """The next id in our half (wrapping within it; 0 is never an id)."""
        low, high = (HOST_FIRST, 0xFFFFFFFF) if self._host else (1, HOST_FIRST - 1)
        return sid + 1 if sid < high else low

    # -- one stream: socket -> channel (pump), channel -> socket (write_out) --

    def _pump(self, s: _Stream) -> None:
        try:
            self._pump_out(s)
        finally:
            self._leave(s)

    def _pump_out(self, s: _Stream) -> None:
        assert s.conn is not None
        try:
            while True:
                with s.cv:
                    while s.credit <= 0 and not s.closed:
                        s.cv.wait()
                    if s.closed:
                        return
                    want = min(s.credit, CHUNK)
                data = s.conn.recv(want)
                if s.closed:
                    return
                if not data:
                    break
                with s.cv:
                    s.credit -= len(data)
                self.send(s.sid, DATA, data)
            self.send(s.sid, EOF)
        except OSError:  # a reset socket, or the channel gone: the stream is over
            self._close(s, tell_peer=True)
            return
        self._finish(s)

    def _write_out(self, s: _Stream, port: int = -1) -> None:
        try:
            self._write_in(s, port)
        finally:
            self._leave(s)

    def _write_in(self, s: _Stream, port: int) -> None:
        if s.conn is None:  # host side: connect here, not on the frame reader
            conn = self._opener(port) if self._opener else None
            if conn is not None:
                conn.settimeout(None)  # the direct write below must never wait
            with s.cv:
                s.conn = conn
                if conn is not None and not s.closed:
                    s.users += 1
                    threading.Thread(target=self._pump, args=(s,), daemon=True).start()
            if conn is None:
                self._close(s, tell_peer=True)
                return
        assert s.conn is not None
        while True:
            with s.cv:
                while not s.queue and not s.eof and not s.closed:
                    s.cv.wait()
                if s.closed:
                    return
                if not s.queue:
                    break
                data = b"".join(s.queue)
                s.queue.clear()
                s.writing = True
            try:
                s.conn.sendall(data)
            except OSError:
                self._close(s, tell_peer=True)
                return
            with s.cv:
                s.writing = False
            self._taken(s, len(data))
        with contextlib.suppress(OSError):
            s.conn.shutdown(socket.SHUT_WR)
        self._finish(s)

    def _taken(self, s: _Stream, n: int) -> None:
        """`n` bytes left for the socket: grant them back, a quarter window at a time
        (one CREDIT per DATA frame cost the guest a wake-up per frame)."""
        with s.cv:
            s.taken += n
            n = s.taken if s.taken >= self._window // 4 else 0
            if n:
                s.taken = 0
                s.allowed += n
        if n:
            self._control_frame(s.sid, credit=n)

    def _finish(self, s: _Stream) -> None:
        """One direction of `s` is done; free it when both are."""
        with s.cv:
            s.ended += 1
            if s.ended < 2 or s.closed:
                return
            s.closed = True
        with self._lock:
            if self._streams.get(s.sid) is s:
                del self._streams[s.sid]

    def _leave(self, s: _Stream) -> None:
        with s.cv:  # under the lock: the frame reader writes to `conn` under it too
            s.users -= 1
            if s.users == 0 and s.conn is not None:
                s.conn.close()

    def _close(self, s: _Stream, tell_peer: bool) -> None:
        with s.cv:
            if s.closed:
                return
            s.closed = True
            s.queue.clear()
            s.cv.notify_all()
        with self._lock:
            if self._streams.get(s.sid) is s:
                del self._streams[s.sid]
        if s.conn is not None:  # its threads wake and leave, the last one closes it
            with contextlib.suppress(OSError):
                s.conn.shutdown(socket.SHUT_RDWR)
        if tell_peer:
            self._control_frame(s.sid, kind=CLOSE)

    # -- frames the reader sends go through their own thread --

    def _control_frame(self, sid: int, kind: int = CREDIT, credit: int = 0) -> None:
        with self._out:
            if kind == CREDIT:  # one pending CREDIT per stream, added up
                self._credits[sid] = self._credits.get(sid, 0) + credit
            else:
                self._control.append(HEADER.pack(sid, kind, 0))
            if len(self._control) + len(self._credits) > 4 * self._max + 64:
                self._done = True  # the peer floods and does not read: give up
            self._out.notify()

    def _flush_control(self) -> None:
        while True:
            with self._out:
                while not self._control and not self._credits and not self._done:
                    self._out.wait()
                if self._done:
                    return
                frames = list(self._control)
                self._control.clear()
                for sid, n in self._credits.items():
                    frames.append(HEADER.pack(sid, CREDIT, AMOUNT.size) + AMOUNT.pack(n))
                self._credits.clear()
            try:
                for frame in frames:
                    self._put(frame)
            except OSError:
                return

    # -- the frame reader --

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            got = self._read(65536)
            if not got:
                raise EOFError
            self._buf += got
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def serve(self) -> None:
        """Read frames until the channel ends (or the peer floods it), then close
        every stream."""
        try:
            while not self._done:
                sid, kind, length = HEADER.unpack(self._exact(HEADER.size))
                payload = self._exact(length) if length else b""
                self._frame(sid, kind, payload)
        except (EOFError, OSError):
            pass
        with self._out:
            self._done = True
            self._out.notify()
        with self._lock:
            streams = list(self._streams.values())
        for s in streams:
            self._close(s, tell_peer=False)

    def _frame(self, sid: int, kind: int, payload: bytes) -> None:
        with self._lock:
            s = self._streams.get(sid)
        if kind == OPEN:
            if (sid >= HOST_FIRST) == self._host:
                return  # the peer opens streams in its own half of the ids only
            self._open(sid, s, payload)
        elif s is None:
            return  # a stream already over: late frames are dropped
        elif kind == DATA:
            self._data(s, payload)
        elif kind == CREDIT and len(payload) == AMOUNT.size:
            with s.cv:
                s.credit = min(s.credit + AMOUNT.unpack(payload)[0], 1 << 31)
                s.cv.notify_all()
        elif kind == EOF:
            with s.cv:
                s.eof = True
                s.cv.notify_all()
        elif kind == CLOSE:
            self._close(s, tell_peer=False)

    def _data(self, s: _Stream, payload: bytes) -> None:
        sent, ok = 0, True
        with s.cv:
            if s.closed:
                return  # over already: a late frame
            if s.eof or len(payload) > s.allowed:
                ok = False  # beyond its window (or after its EOF): cut it off
            elif payload:
                s.allowed -= len(payload)
                # What the socket takes at once skips the writer thread (as fast as
                # writing here was); the rest waits for it, in order.
                if not s.queue and not s.writing and s.conn is not None:
                    try:
                        sent = s.conn.send(payload, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        pass
                    except OSError:
                        ok = False
                if ok and sent < len(payload):
                    s.queue.append(payload[sent:])
                    s.cv.notify_all()
        if not ok:
            self._close(s, tell_peer=True)
        elif sent:
            self._taken(s, sent)

    def _open(self, sid: int, existing: _Stream | None, payload: bytes) -> None:
        if existing is not None:  # an id in use: the guest is confused or hostile
            self._close(existing, tell_peer=True)
            return
        # The guest is untrusted: a port that does not parse maps to nothing.
        port = int(payload) if payload.isdigit() and len(payload) <= 5 else -1
        s = _Stream(sid, None, self._window)
        with self._lock:
            full = len(self._streams) >= self._max
            if not full:
                self._streams[sid] = s
        if full:
            self._control_frame(sid, kind=CLOSE)
            return
        threading.Thread(target=self._write_out, args=(s, port), daemon=True).start()


def guest(device: str, ports: list[int]) -> None:
    # A descriptor a stream, up to MAX_STREAMS, plus the port and the listeners: at
    # the usual soft limit of 1024 an accept would fail before the stream limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fd = os.open(device, os.O_RDWR)
    mux = Mux(lambda n: os.read(fd, n), lambda b: os.write(fd, b), start_service)
    for port in ports:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(4096)
        threading.Thread(target=_accept, args=(mux, lsock, port), daemon=True).start()
    with open(READY, "w") as f:
        f.write("ready\n")
    mux.serve()


def start_service(port: int) -> socket.socket | None:
    """A stream the host opened: SERVICE_PORT gets a fresh root service process (this
    forwarder runs as root; the agent has no way to reach the service), anything else
    is refused."""
    if port != SERVICE_PORT:
        return None
    ours, theirs = socket.socketpair()
    with theirs:
        proc = subprocess.Popen([sys.executable, "-I", "-S", SERVICE], stdin=theirs.fileno(),
                                stdout=subprocess.DEVNULL)  # fmt: skip
    threading.Thread(target=proc.wait, daemon=True).start()
    return ours


def _accept(mux: Mux, lsock: socket.socket, port: int) -> None:
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:  # out of descriptors for now: the listener must live on
            time.sleep(0.05)
            continue
        mux.add(conn, port)


if __name__ == "__main__" and sys.argv[1:2] == ["guest"]:
    guest(sys.argv[2], [int(p) for p in sys.argv[3:]])
