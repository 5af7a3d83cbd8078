"""The real Claude Code CLI in a microVM guest: `claude -p` on the agent-claude root,
as the agent (uid 1000), with no network device, reaches a fake Anthropic API on
loopback only through the host channel and a real `bot-bottle egress serve`, which
injects the sidecar-held token; the guest never sees it. The environment and
`~/.claude.json` are the ones the Claude provider and the plan give a bottle.

This is the CLI's half of the microVM e2e (before `backend: microvm` runs bottles):
it proves the root, the CLI (a native binary), trust bundle and channel carry a real
agent turn under TCG, and prints how long it took (`pytest -s`)."""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egress"))

from egress_harness import SECRET, Egress, start_egress
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI, start

from bot_bottle.backends.microvm import boot, provision_disk
from bot_bottle.backends.microvm.channel import HostChannel
from bot_bottle.backends.microvm.provision_disk import GuestFile
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.manifest.model import AgentProviderSpec
from bot_bottle.plan.environment import TRUST_BUNDLE, bottle_env
from bot_bottle.providers.base import WORKSPACE_KEY
from bot_bottle.providers.claude import CONFIG, ClaudeProvider

DEADLINE = 240.0  # under the suite's 300 s per-test timeout
HOME = "/home/agent"
PROXY_PORT = 3128
FILES = "/run/bot-bottle/files"


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[FakeProviderAPI]:
    """The fake Messages API on port 443 of a loopback address of its own (Claude dials
    api.anthropic.com:443; egress maps the name to this address)."""
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


def _guest_script(env: dict[str, str]) -> str:
    """Put the trust bundle and `~/.claude.json` where provisioning would, then run
    `claude -p` with the bottle's environment (and nothing of stage 2's)."""
    bundle = TRUST_BUNDLE.replace("~", HOME, 1)
    exports = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    return f"""
mkdir -p {os.path.dirname(bundle)}
cp {FILES}/egress-ca.pem {bundle}
cp {FILES}/claude.json {CONFIG.replace("~", HOME, 1)}
cd /workspace
t0=$(/usr/bin/date +%s.%N)
env -i {exports} claude -p 'say pong' </dev/null
status=$?
echo "bb-claude-status: $status"
echo "bb-time claude -p: $(echo "$(/usr/bin/date +%s.%N) $t0" | awk '{{printf "%.2f", $1 - $2}}')"
exit $status
"""


@pytest.fixture
def claude_run(
    boot_files: BootFiles,
    agent_root: Callable[[str], Path],
    fake_api: FakeProviderAPI,
    tmp_path: Path,
) -> Iterator[tuple[boot.Boot, Egress]]:
    d = tmp_path / "vm"
    d.mkdir(mode=0o700)
    doc = {
        "version": 1,
        "bottle": "claude-in-guest",
        "routes": [{"host": "api.anthropic.com",
                    "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"}}],
        "hosts": {"api.anthropic.com": fake_api.address},
        "ssrf_ip_allowlist": [f"{fake_api.address}/32"],
        "upstream_ca": str(fake_api.ca_path),
    }  # fmt: skip
    eg = start_egress(d / "egress", doc, listen=f"unix:{d}/egress.sock")
    channel = HostChannel(d / "channel.sock", {PROXY_PORT: d / "egress.sock"})
    spec = AgentProviderSpec(template="claude", auth_token="FAKE_CLAUDE_TOKEN_VAR")
    made = ClaudeProvider().contribute(spec, "")
    config = next(f for f in made.files if f.path == CONFIG).content
    config = config.replace(json.dumps(WORKSPACE_KEY).encode(), b'"/workspace"')
    env = bottle_env(made.env, home=HOME, proxy_port=PROXY_PORT,
                     base={"PATH": "/usr/local/bin:/usr/bin:/bin", "USER": "agent",
                           "LANG": "C.UTF-8"})  # fmt: skip
    disk = provision_disk.write([GuestFile("egress-ca.pem", eg.ca.read_bytes()),
                                 GuestFile("claude.json", config),
                                 GuestFile("run.sh", _guest_script(env).encode())],
                                d / "provision.tar")  # fmt: skip
    cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                   root=agent_root("claude"), command=("sh", f"{FILES}/run.sh"),
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                   channel=channel.path, mux_ports=(PROXY_PORT,), user=1000,
                   provision=disk)  # fmt: skip
    try:
        yield boot.run(cfg, ProcessExecutor(), timeout=DEADLINE, marker="bb-claude-status"), eg
    finally:
        channel.close()
        eg.stop()


def test_claude_p_answers_from_the_fake_api_through_the_channel(
    claude_run: tuple[boot.Boot, Egress], fake_api: FakeProviderAPI
) -> None:
    b, eg = claude_run
    assert not b.timed_out, f"no answer within {DEADLINE} s: {b.output[-3000:]}"
    assert CLAUDE_REPLY in b.output, b.output[-3000:]
    assert b.guest_exit == 0, b.output[-3000:]
    messages = [q for q in fake_api.requests if q.path.startswith("/v1/messages")]
    assert messages, [q.path for q in fake_api.requests]
    # The sidecar's token reached the API; the guest only ever had the placeholder.
    assert {q.headers["authorization"] for q in messages} == {f"Bearer {SECRET}"}
    assert SECRET not in b.output
    assert eg.wait_audit(lambda r: "api.anthropic.com" in str(r))
    times = [ln for ln in b.output.splitlines() if ln.startswith("bb-time ")]
    print(f"\n[claude -p in a TCG guest] boot to exit {b.total_s:.1f} s; "
          f"{'; '.join(times)}; {len(fake_api.requests)} API requests")  # fmt: skip
