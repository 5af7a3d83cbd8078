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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_turn import SECRET, STATUS, Egress, HomeFile, fake_api, report, run_turn, script
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI

from bot_bottle.backends.microvm import boot
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.manifest.model import AgentProviderSpec
from bot_bottle.providers.base import WORKSPACE_KEY
from bot_bottle.providers.claude import CONFIG, ClaudeProvider

__all__ = ["fake_api"]  # the fixture, used by name


@pytest.fixture
def claude_run(
    boot_files: BootFiles,
    agent_root: Callable[[str], Path],
    fake_api: FakeProviderAPI,
    tmp_path: Path,
) -> Iterator[tuple[boot.Boot, Egress]]:
    spec = AgentProviderSpec(template="claude", auth_token="FAKE_CLAUDE_TOKEN_VAR")
    made = ClaudeProvider().contribute(spec, "")
    config = next(f for f in made.files if f.path == CONFIG).content
    config = config.replace(json.dumps(WORKSPACE_KEY).encode(), b'"/workspace"')
    home = [HomeFile(CONFIG.removeprefix("~/"), config)]
    yield from run_turn(boot_files, agent_root("claude"), fake_api, ["api.anthropic.com"],
                        script(made.env, home, ["claude", "-p", "say pong"]), home,
                        tmp_path)  # fmt: skip


def test_claude_p_answers_from_the_fake_api_through_the_channel(
    claude_run: tuple[boot.Boot, Egress], fake_api: FakeProviderAPI
) -> None:
    b, eg = claude_run
    assert not b.timed_out, f"no answer in time: {b.output[-3000:]}"
    assert CLAUDE_REPLY in b.output, b.output[-3000:]
    assert f"{STATUS} 0" in b.output and b.guest_exit == 0, b.output[-3000:]
    messages = [q for q in fake_api.requests if q.path.startswith("/v1/messages")]
    assert messages, [q.path for q in fake_api.requests]
    # The sidecar's token reached the API; the guest only ever had the placeholder.
    assert {q.headers["authorization"] for q in messages} == {f"Bearer {SECRET}"}
    assert SECRET not in b.output
    assert eg.wait_audit(lambda r: "api.anthropic.com" in str(r))
    report("claude -p", b, fake_api)
