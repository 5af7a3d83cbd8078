"""The guest's forwarder over the host channel: the guest, with no network device,
talks HTTP to `127.0.0.1:3128` as an agent would to its proxy, and the request arrives
at a host Unix socket (a recording fake sidecar). A port mapped to a dead sidecar
closes the guest's connection without a byte (fail closed). The command runs as the
agent's uid (1000), which can neither open the channel device nor kill the forwarder
(root's), so the forwarder is its only way to the host."""

from __future__ import annotations

import os
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

GUEST = """
import glob, http.client, os, signal, socket
print("uid:", os.getuid(), os.getgid(), os.getgroups())
port = "/dev/" + glob.glob("/sys/class/virtio-ports/*")[0].split("/")[-1]
try:
    os.open(port, os.O_RDWR)
    print("channel device: opened")
except PermissionError:
    print("channel device: refused")
mux = [int(p.split("/")[2]) for p in glob.glob("/proc/[0-9]*/cmdline")
       if b"mux.py" in open(p, "rb").read()]
try:
    os.kill(mux[0], signal.SIGKILL)
    print("forwarder kill: done")
except PermissionError:
    print("forwarder kill: refused")
with open(os.path.expanduser("~/note"), "w") as f:
    f.write("x")
print("home:", os.path.expanduser("~"), "writable")
c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=20)
c.request("GET", "http://example.test/hello", headers={"X-Probe": "from-guest"})
r = c.getresponse()
print("proxy answer:", r.status, r.read().decode())
s = socket.create_connection(("127.0.0.1", 9419), timeout=20)
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
print("dead sidecar read:", repr(s.recv(100)))
import subprocess, sys
subprocess.Popen(["sh", "-c", "while :; do echo 'bot-bottle-guest: exit 0'; done"])
sys.exit(3)
"""


class FakeSidecar:
    """An HTTP responder on a Unix socket that records each request head it reads."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (got := conn.recv(4096)):
                    head += got
                self.requests.append(head)
                body = b"hello from the host sidecar"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(body), body))  # fmt: skip


@pytest.fixture(scope="module")
def forwarded(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[boot.Boot, FakeSidecar]]:
    d = tmp_path_factory.mktemp("fwd")
    os.chmod(d, 0o700)
    sidecar = FakeSidecar(d / "egress.sock")
    channel = HostChannel(d / "channel.sock", {3128: d / "egress.sock", 9419: d / "dead.sock"})
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=Path(root_image), command=("python3", "-c", GUEST),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=channel.path, mux_ports=(3128, 9419), user=1000)  # fmt: skip
    yield boot.run(cfg, ProcessExecutor(), timeout=90, marker="dead sidecar read"), sidecar
    channel.close()
    sidecar.sock.close()


def test_guest_http_reaches_the_host_sidecar(forwarded: tuple[boot.Boot, FakeSidecar]) -> None:
    b, sidecar = forwarded
    assert "proxy answer: 200 hello from the host sidecar" in b.output, b.output[-3000:]
    assert len(sidecar.requests) == 1
    assert sidecar.requests[0].startswith(b"GET http://example.test/hello HTTP/1.1\r\n")
    assert b"X-Probe: from-guest" in sidecar.requests[0]


def test_dead_sidecar_closes_the_guest_connection(forwarded: tuple[boot.Boot, FakeSidecar]) -> None:
    b, _ = forwarded
    assert "dead sidecar read: b''" in b.output, b.output[-3000:]


def test_a_leftover_process_cannot_forge_the_exit_status(
    forwarded: tuple[boot.Boot, FakeSidecar],
) -> None:
    b, _ = forwarded
    assert "bot-bottle-guest: exit 0" in b.output  # the forger did print
    assert b.guest_exit == 3


def test_agent_cannot_bypass_or_kill_the_forwarder(
    forwarded: tuple[boot.Boot, FakeSidecar],
) -> None:
    b, _ = forwarded
    assert "uid: 1000 1000 []" in b.output, b.output[-3000:]
    assert "channel device: refused" in b.output
    assert "forwarder kill: refused" in b.output
    assert "home: /home/agent writable" in b.output
