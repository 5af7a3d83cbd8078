"""One agent turn in a microVM guest, for the CLI tests: a fake provider API on port 443
of a loopback address of its own, a real `bot-bottle egress serve` on a Unix socket
that routes the provider's hosts to it with the sidecar-held token, the host channel,
and a guest (no network device) that runs a script as uid 1000 with the files it is
given under /run/bot-bottle/files. What the bottle's provisioning would write (the trust
bundle, the provider's files) the script copies into HOME itself."""

from __future__ import annotations

import os
import random
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egress"))

from egress_harness import SECRET, Egress, start_egress
from fakes.provider_api import FakeProviderAPI, start

from bot_bottle.backends.microvm import boot, provision_disk
from bot_bottle.backends.microvm.channel import HostChannel
from bot_bottle.backends.microvm.provision_disk import GuestFile
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.plan.environment import TRUST_BUNDLE, bottle_env

DEADLINE = 240.0  # under the suite's 300 s per-test timeout
HOME = "/home/agent"
PROXY_PORT = 3128
FILES = "/run/bot-bottle/files"
STATUS = "bb-agent-status:"
TIME = "bb-time agent:"
__all__ = ["SECRET", "Egress"]  # re-exported: the harness imports only after the path insert above


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[FakeProviderAPI]:
    """The agent CLIs dial their API on :443; egress maps the names to this address."""
    if os.geteuid() != 0:
        pytest.fail("the fake API binds port 443 on a loopback address (needs root)")
    for _ in range(20):
        addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
        try:
            api = start(addr, tmp_path)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free loopback address for the fake API")
    yield api
    api.stop()


@dataclass(frozen=True)
class HomeFile:
    """A file the provider would provision: its path under HOME and its bytes."""

    path: str
    data: bytes


def script(
    agent_env: Mapping[str, str], home_files: Sequence[HomeFile], argv: Sequence[str]
) -> str:
    """Put the trust bundle and the provider's files under HOME, as provisioning would,
    then run `argv` in /workspace with the bottle's environment only."""
    env = bottle_env(agent_env, home=HOME, proxy_port=PROXY_PORT,
                     base={"PATH": "/usr/local/bin:/usr/bin:/bin", "USER": "agent",
                           "LANG": "C.UTF-8"})  # fmt: skip
    bundle = TRUST_BUNDLE.replace("~", HOME, 1)
    lines = [f"mkdir -p {os.path.dirname(bundle)}", f"cp {FILES}/egress-ca.pem {bundle}"]
    for i, f in enumerate(home_files):
        target = f"{HOME}/{f.path}"
        lines += [f"mkdir -p {os.path.dirname(target)}", f"cp {FILES}/home-{i} {target}",
                  f"chmod 600 {target}"]  # fmt: skip
    exports = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    now = "/usr/bin/date +%s.%N"  # busybox's date has no %N
    lines += ["cd /workspace", f"t0=$({now})",
              f"env -i {exports} {shlex.join(argv)} </dev/null", "status=$?",
              f'echo "{STATUS} $status"',
              f'echo "{TIME} $(echo "$({now}) $t0" | awk \'{{printf "%.2f", $1 - $2}}\')"',
              "exit $status"]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_turn(
    boot_files: BootFiles,
    root: Path,
    api: FakeProviderAPI,
    hosts: Sequence[str],
    guest_script: str,
    home_files: Sequence[HomeFile],
    tmp: Path,
    token: str | None = None,
) -> Iterator[tuple[boot.Boot, Egress]]:
    """Boot `root` with `guest_script`; `hosts` route to `api` with EGRESS_TOKEN_0
    (`token`, by default the egress harness's SECRET)."""
    d = tmp / "vm"
    d.mkdir(mode=0o700)
    doc = {
        "version": 1,
        "bottle": "agent-in-guest",
        "routes": [{"host": h, "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"}}
                   for h in hosts],
        "hosts": {h: api.address for h in hosts},
        "ssrf_ip_allowlist": [f"{api.address}/32"],
        "upstream_ca": str(api.ca_path),
    }  # fmt: skip
    extra = {"EGRESS_TOKEN_0": token} if token else None
    eg = start_egress(d / "egress", doc, listen=f"unix:{d}/egress.sock", extra_env=extra)
    channel = HostChannel(d / "channel.sock", {PROXY_PORT: d / "egress.sock"})
    files = [GuestFile("egress-ca.pem", eg.ca.read_bytes()),
             GuestFile("run.sh", guest_script.encode()),
             *(GuestFile(f"home-{i}", f.data) for i, f in enumerate(home_files))]  # fmt: skip
    disk = provision_disk.write(files, d / "provision.tar")
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=root, command=("sh", f"{FILES}/run.sh"),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=channel.path, mux_ports=(PROXY_PORT,), user=1000,
                   provision=disk)  # fmt: skip
    try:
        yield boot.run(cfg, ProcessExecutor(), timeout=DEADLINE, marker=STATUS), eg
    finally:
        channel.close()
        eg.stop()


def report(label: str, b: boot.Boot, api: FakeProviderAPI) -> None:
    took = next((ln.removeprefix(TIME).strip() for ln in b.output.splitlines()
                 if ln.startswith(TIME)), "?")  # fmt: skip
    print(f"\n[{label} in a TCG guest] boot to exit {b.total_s:.1f} s; the agent's "
          f"command {took} s; {len(api.requests)} API requests")  # fmt: skip
