"""Where bot-bottle's wiring sits in every bottle: the trust bundle, and the proxy and
CA variables that point the agent at the egress and make it trust the egress CA."""

from __future__ import annotations

TRUST_BUNDLE = "~/.bot-bottle/ca-bundle.pem"
"""Where provisioning puts the bottle's trust bundle (system CAs + the egress CA)."""

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
)  # fmt: skip

CA_VARIABLES = (
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
    "CODEX_CA_CERTIFICATE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE",
)  # fmt: skip


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
