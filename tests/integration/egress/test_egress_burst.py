"""A burst of new connections queues at every hop of a bottle's way out; none is dropped.

A connection to a full accept queue is not refused: a TCP SYN is dropped (the client
retries after 1, 3, 7, 15, 31 ... s) and a non-blocking Unix connect fails. Under 200
concurrent connections that made some requests wait over 30 s. Each test stops the
process that accepts (SIGSTOP, as a busy event loop would), opens a burst, and asserts
that every connection was queued at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from egress_harness import Egress
from test_egress_local_users import listening_ports

pytestmark = pytest.mark.integration

BURST = 300
FORWARDER = Path(__file__).resolve().parents[3] / "bot_bottle/backends/namespace/forwarder.py"


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def tcp_burst(port: int) -> int:
    """Open BURST connections to loopback `port`; how many were not established within
    half a second (their SYN was dropped)."""
    socks = []
    try:
        for _ in range(BURST):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            socks.append(s)
        pending = set(socks)
        deadline = time.monotonic() + 0.5
        while pending and time.monotonic() < deadline:
            _, ready, _ = select.select([], list(pending), [], 0.05)
            for s in ready:
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                pending.discard(s)
        return len(pending)
    finally:
        for s in socks:
            s.close()


def unix_burst(path: str) -> int:
    """Open BURST connections to Unix socket `path`; how many found its queue full."""
    socks, full = [], 0
    try:
        for _ in range(BURST):
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                full += 1
            except OSError as e:
                assert e.errno == errno.EAGAIN, e
                full += 1
            socks.append(s)
        return full
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def unix_egress(make_egress: Callable[..., Egress]) -> Egress:
    sock_path = os.path.join(tempfile.mkdtemp(prefix="bbeg"), "egress.sock")
    return make_egress(listen=f"unix:{sock_path}")


def test_egress_relay_and_proxy_queue_a_burst(unix_egress: Egress) -> None:
    eg = unix_egress
    ports = listening_ports(eg.proc.pid)
    assert ports
    with stopped(eg.proc.pid):
        relay_full = unix_burst(eg.address.removeprefix("unix:"))
        dropped = {port: tcp_burst(port) for port in ports}
    assert relay_full == 0, f"{relay_full} of {BURST} connections found the relay's queue full"
    assert set(dropped.values()) == {0}, f"SYNs dropped by the proxy's listener: {dropped}"
    assert eg.proc.poll() is None


def test_forwarder_queues_a_burst(tmp_path: Path) -> None:
    sidecar = socket.socket(socket.AF_UNIX)
    sidecar.bind(str(tmp_path / "s.sock"))
    sidecar.listen(4096)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fwd = subprocess.Popen([sys.executable, "-I", "-S", str(FORWARDER),
                            f"{port}={tmp_path / 's.sock'}", "--", "sleep", "60"])  # fmt: skip
    try:
        # The listener is bound before the agent (here `sleep`) runs; the forked child
        # accepts. Wait for the exec, then stop the child that accepts.
        children: list[str] = []
        deadline = time.monotonic() + 10
        while not children and time.monotonic() < deadline:
            kids = Path(f"/proc/{fwd.pid}/task/{fwd.pid}/children").read_text().split()
            if b"sleep" in Path(f"/proc/{fwd.pid}/cmdline").read_bytes():
                children = kids
            time.sleep(0.02)
        assert len(children) == 1, children
        with stopped(int(children[0])):
            dropped = tcp_burst(port)
        assert dropped == 0, f"{dropped} of {BURST} SYNs dropped by the forwarder's listener"
    finally:
        # Outside a bottle no PID namespace ends the forwarder's accepting child with
        # the agent: end it here, or it outlives the test.
        with contextlib.suppress(OSError):  # gone already, it and its children
            for pid in Path(f"/proc/{fwd.pid}/task/{fwd.pid}/children").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
        fwd.kill()
        fwd.wait()
        sidecar.close()
