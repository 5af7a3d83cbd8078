"""One precedence for the agent's environment on every backend: bot-bottle's proxy and
CA variables (and HOME) win over whatever the bottle's env says (`plan.environment`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.backends import BottleSpec, ProcessExecutor, SidecarLink
from bot_bottle.backends.docker import layout
from bot_bottle.backends.namespace.backend import NamespaceBackend

WIRING = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
    "CODEX_CA_CERTIFICATE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE", "HOME",
)  # fmt: skip


def _spec(tmp_path: Path) -> BottleSpec:
    return BottleSpec(
        slug="b",
        state_dir=tmp_path,
        workspace_mode="none",
        workspace_path="",
        env={**{name: "from-the-bottle" for name in WIRING}, "KEEP": "kept"},
        sidecars=(SidecarLink("egress", tmp_path / "e.sock", 8080),),
    )


def _namespace(spec: BottleSpec) -> dict[str, str]:
    return NamespaceBackend(ProcessExecutor(), bwrap="bwrap").env(spec)


@pytest.mark.parametrize("env_of", [_namespace, layout.agent_env], ids=["namespace", "docker"])
def test_bot_bottle_wiring_wins(env_of: object, tmp_path: Path) -> None:
    env = env_of(_spec(tmp_path))  # type: ignore[operator]
    assert env["KEEP"] == "kept"
    assert {k: env[k] for k in WIRING if env[k] == "from-the-bottle"} == {}
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://127.0.0.1:8080"
    assert env["CURL_CA_BUNDLE"] == env["SSL_CERT_FILE"]
    assert env["CURL_CA_BUNDLE"].endswith("/.bot-bottle/ca-bundle.pem")


def test_both_backends_set_the_same_wiring(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    ns, dk = _namespace(spec), layout.agent_env(spec)
    proxies = [k for k in WIRING if "PROXY" in k.upper()]
    assert {k: ns[k] for k in proxies} == {k: dk[k] for k in proxies}
    assert sorted(k for k in ns if k in WIRING) == sorted(k for k in dk if k in WIRING)
