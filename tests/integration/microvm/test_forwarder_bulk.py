"""Bulk bytes through the guest's forwarder (images/guest/mux.py) in a real guest,
beside a stream whose host sidecar never reads: that stream fills its window and
stalls alone, and the other still moves 16 MiB each way (before per-stream flow
control the stuck one stalled the whole channel). Prints the throughput."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.channel import HostChannel
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

BULK = 16 << 20

GUEST = f"""
import socket, time
stuck = socket.create_connection(("127.0.0.1", 9419), timeout=60)
stuck.setblocking(False)
held = 0
try:
    while True:
        held += stuck.send(b"s" * 65536)
except BlockingIOError:
    pass
print("stuck stream took:", held, flush=True)
s = socket.create_connection(("127.0.0.1", 3128), timeout=60)
block = b"u" * 65536
t = time.perf_counter()
for _ in range({BULK} // 65536):
    s.sendall(block)
s.shutdown(socket.SHUT_WR)
got = b""
while b"\\n" not in got:
    got += s.recv(65536)
up = time.perf_counter() - t
ack, _, rest = got.partition(b"\\n")
down = len(rest)
t = time.perf_counter()
while chunk := s.recv(65536):
    down += len(chunk)
dt = time.perf_counter() - t
print("bulk ack:", ack.decode(), "down:", down)
print("bulk figures: up_MBps=%.0f down_MBps=%.0f" % ({BULK} / up / 1e6, down / dt / 1e6))
"""


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(8)
    return sock


class BulkSidecar:
    """Counts a connection's bytes to its EOF, answers `got N`, then sends BULK bytes."""

    def __init__(self, path: Path) -> None:
        self.sock = _listen(path)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            n = 0
            while chunk := conn.recv(65536):
                n += len(chunk)
            conn.sendall(b"got %d\n" % n)
            block = b"d" * 65536
            for _ in range(BULK // len(block)):
                conn.sendall(block)


class StuckSidecar:
    """Accepts and never reads."""

    def __init__(self, path: Path) -> None:
        self.sock = _listen(path)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return


@pytest.fixture(scope="module")
def bulk(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[boot.Boot]:
    d = tmp_path_factory.mktemp("bulk")
    os.chmod(d, 0o700)
    sidecars = (BulkSidecar(d / "egress.sock"), StuckSidecar(d / "gate.sock"))
    channel = HostChannel(d / "channel.sock", {3128: d / "egress.sock", 9419: d / "gate.sock"})
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=Path(root_image), command=("python3", "-c", GUEST),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=channel.path, mux_ports=(3128, 9419), user=1000)  # fmt: skip
    yield boot.run(cfg, ProcessExecutor(), timeout=120, marker="bulk figures")
    channel.close()
    for s in sidecars:
        s.sock.close()


def test_bulk_moves_beside_a_stuck_stream(bulk: boot.Boot) -> None:
    assert "stuck stream took:" in bulk.output, bulk.output[-3000:]
    assert f"bulk ack: got {BULK} down: {BULK}" in bulk.output, bulk.output[-3000:]
    m = re.search(r"bulk figures: up_MBps=(\d+) down_MBps=(\d+)", bulk.output)
    assert m is not None
    print(f"\nforwarder bulk under TCG: guest->host {m[1]} MB/s, host->guest {m[2]} MB/s")
