"""The real Codex CLI in a microVM guest: `codex exec` on the agent-codex root, as the
agent (uid 1000), in ChatGPT mode with the placeholder login the Codex provider gives a
bottle, reaches a fake ChatGPT backend on loopback only through the host channel and a
real egress, which injects the host's access token; the guest never sees it. Prints how
long the turn took under TCG (`pytest -s`)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_turn import STATUS, Egress, HomeFile, fake_api, report, run_turn, script
from fakes.provider_api import CODEX_REPLY, FakeProviderAPI

from bot_bottle.backends.microvm import boot
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.providers import codex_auth
from bot_bottle.providers.codex import AUTH_FILE, QUIET_CONFIG

__all__ = ["fake_api"]  # the fixture, used by name

SIGNATURE = "FAKEHOSTSIG-codex-guest-5d2e"


def _jwt(claims: dict[str, object], sig: str) -> str:
    def enc(o: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


CLAIMS = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
          "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                          "chatgpt_plan_type": "plus"}}  # fmt: skip
ACCESS = _jwt(CLAIMS, SIGNATURE)


@pytest.fixture
def codex_run(
    boot_files: BootFiles,
    agent_root: Callable[[str], Path],
    fake_api: FakeProviderAPI,
    tmp_path: Path,
) -> Iterator[tuple[boot.Boot, Egress]]:
    host_auth = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
                 "last_refresh": "2026-01-01T00:00:00Z",
                 "tokens": {"id_token": _jwt(CLAIMS, "FAKEIDSIG"), "access_token": ACCESS,
                            "refresh_token": "rt-FAKE-REFRESH-guest", "account_id": "acct-fake"}}  # fmt: skip
    login = json.dumps(codex_auth.placeholder_auth(host_auth)).encode()
    home = [HomeFile(AUTH_FILE.removeprefix("~/"), login)]
    quiet = [x for kv in QUIET_CONFIG for x in ("-c", kv)]
    argv = ["codex", *quiet, "exec", "--skip-git-repo-check", "say pong"]
    yield from run_turn(boot_files, agent_root("codex"), fake_api,
                        ["chatgpt.com", "api.openai.com"], script({}, home, argv), home,
                        tmp_path, token=ACCESS)  # fmt: skip


def test_codex_exec_answers_from_the_fake_backend_through_the_channel(
    codex_run: tuple[boot.Boot, Egress], fake_api: FakeProviderAPI
) -> None:
    b, eg = codex_run
    seen = [(q.method, q.path) for q in fake_api.requests]
    assert not b.timed_out, f"no answer in time: {b.output[-3000:]}"
    assert CODEX_REPLY in b.output, (b.output[-3000:], seen)
    assert f"{STATUS} 0" in b.output and b.guest_exit == 0, b.output[-3000:]
    assert any(q.path == "/backend-api/codex/responses" for q in fake_api.requests), seen
    for q in fake_api.requests:  # the host's token, which only egress can have put there
        assert q.headers.get("authorization") == f"Bearer {ACCESS}", (q.method, q.path)
    for secret in (ACCESS, SIGNATURE, "FAKEIDSIG", "rt-FAKE-REFRESH-guest"):
        assert secret not in b.output
    assert eg.wait_audit(lambda r: "chatgpt.com" in str(r))
    report("codex exec", b, fake_api)
