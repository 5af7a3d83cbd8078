"""The one rule for a bottle's environment: which variables bot-bottle owns, and who
wins when an agent's environment names them too.

bot-bottle's proxy and CA variables (and HOME) always win over the manifest's and
the provider's env, on every backend: they are what routes the agent's traffic
through egress and makes it trust the egress CA, so a value from the manifest would
either break the agent's TLS or route around the policy. The resolver refuses a
manifest that sets one (`RESERVED_ENV`); the merge below is the second wall.
"""

from __future__ import annotations

from collections.abc import Mapping

TRUST_BUNDLE = "~/.bot-bottle/ca-bundle.pem"
"""Where provisioning puts the bottle's trust bundle (system CAs + the egress CA)."""

TOOLS_BIN = "~/.bot-bottle/bin"
"""bot-bottle's programs for the agent (`bot-bottle-ask`): last on every bottle's PATH."""

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
)  # fmt: skip

CA_VARIABLES = (
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
    "CODEX_CA_CERTIFICATE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE",
)  # fmt: skip

RESERVED_ENV = frozenset({*PROXY_VARIABLES, *CA_VARIABLES, "HOME"})
"""What the agent's environment may not set: bot-bottle's wiring."""


def network_env(proxy_port: int | None, home: str) -> dict[str, str]:
    """Proxy variables at the forwarded egress port (NO_PROXY: loopback only), when
    there is an egress; CA variables at the trust bundle under `home`."""
    out: dict[str, str] = {}
    if proxy_port is not None:
        url = f"http://127.0.0.1:{proxy_port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            out[name] = out[name.lower()] = url
        out["NO_PROXY"] = out["no_proxy"] = "localhost,127.0.0.1,::1"
    bundle = TRUST_BUNDLE.replace("~", home, 1)
    for name in CA_VARIABLES:
        out[name] = bundle
    return out


def bottle_env(
    agent: Mapping[str, str],
    *,
    home: str,
    proxy_port: int | None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The agent process's whole environment: the backend's defaults (`base`: PATH,
    USER, ...) < the agent's env < bot-bottle's proxy, CA and HOME variables; PATH
    (when one is set) ends with `TOOLS_BIN`, after the system's directories, so nothing
    provisioned there shadows a system command."""
    env = {**(base or {}), **agent, **network_env(proxy_port, home), "HOME": home}
    if env.get("PATH"):
        env["PATH"] += ":" + TOOLS_BIN.replace("~", home, 1)
    return env
