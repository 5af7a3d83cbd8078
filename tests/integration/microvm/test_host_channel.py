"""The host channel, the guest's only way out (it has no network device): a virtio
serial port QEMU carries to a Unix socket the host listens on. A guest program finds
the port by name and exchanges bytes with a host server that answers in its own way
(upper-cased), so an answer can only have come through the host."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.qemu import CHANNEL_NAME, VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

ROUNDS = 300
BULK = 4 << 20
BLOCK = 65536

GUEST = f"""
import glob, os, time
ports = [p for p in glob.glob("/sys/class/virtio-ports/*/name")
         if open(p).read().strip() == {CHANNEL_NAME!r}]
fd = os.open("/dev/" + ports[0].split("/")[-2], os.O_RDWR)
def exchange(msg):
    os.write(fd, msg)
    got = b""
    while len(got) < len(msg):
        got += os.read(fd, 65536)
    return got
print("channel answer:", exchange(b"hello from the guest\\n").decode().strip())
t = time.perf_counter()
for _ in range({ROUNDS}):
    exchange(b"x" * 64)
rtt = (time.perf_counter() - t) / {ROUNDS}
# The port takes at most 32 KiB a write (the guest driver's cap): a writer that
# ignores the short count loses bytes (it looked like a stall of 64 KiB writes once).
block = memoryview(b"y" * {BLOCK})
t = time.perf_counter()
left = {BULK}
while left:
    left -= os.write(fd, block[: min(left, {BLOCK})])
ack = b""
while not ack.endswith(b"\\n"):
    ack += os.read(fd, 64)
bulk = time.perf_counter() - t
print("channel ack:", ack.decode().strip())
print("channel figures: rtt_us=%.0f bulk_MBps=%.0f" % (rtt * 1e6, {BULK} / bulk / 1e6))
"""


class UpperServer:
    """Echoes upper-cased until the bulk phase, whose bytes it counts and acknowledges;
    records what it received."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.listen(1)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            echoed = 0
            while chunk := conn.recv(65536):
                self.received += chunk
                if b"y" not in chunk and echoed < len(b"hello from the guest\n") + ROUNDS * 64:
                    conn.sendall(chunk.upper())
                    echoed += len(chunk)
                elif self.received.count(b"y") >= BULK:
                    conn.sendall(f"got {self.received.count(b'y')}\n".encode())


@pytest.fixture(scope="module")
def exchanged(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[boot.Boot, UpperServer]]:
    d = tmp_path_factory.mktemp("channel")
    os.chmod(d, 0o700)
    server = UpperServer(d / "channel.sock")
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=Path(root_image), command=("python3", "-c", GUEST),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=d / "channel.sock")  # fmt: skip
    yield boot.run(cfg, ProcessExecutor(), timeout=90, marker="channel figures"), server
    server.sock.close()


def test_guest_round_trips_through_the_host(exchanged: tuple[boot.Boot, UpperServer]) -> None:
    b, server = exchanged
    assert "channel answer: HELLO FROM THE GUEST" in b.output, b.output[-3000:]
    assert server.received.startswith(b"hello from the guest\n")
    assert b.guest_exit == 0


def test_bulk_bytes_all_arrive(exchanged: tuple[boot.Boot, UpperServer]) -> None:
    b, _server = exchanged
    assert f"channel ack: got {BULK}" in b.output, b.output[-3000:]
    m = re.search(r"channel figures: rtt_us=(\d+) bulk_MBps=(\d+)", b.output)
    assert m is not None
    print(f"\nhost channel under TCG: round trip {m[1]} µs, bulk {m[2]} MB/s")
