"""Which upstream certificates the sidecar trusts, and which CA the agent must trust.

mitmproxy's `ssl_verify_upstream_trusted_ca` *replaces* its default store, so the
bundle we hand it is certifi's roots plus the bottle's `upstream_ca` (a PEM path or
PEM text), written into the confdir. The agent trusts `AGENT_CA_FILE` from the
confdir, which mitmproxy creates there on first start.
"""

from __future__ import annotations

import os
from pathlib import Path

import certifi

AGENT_CA_FILE = "mitmproxy-ca-cert.pem"
UPSTREAM_BUNDLE_FILE = "upstream-trust.pem"


def upstream_ca_pem(upstream_ca: str) -> str:
    """The extra upstream CA as PEM text: `upstream_ca` is either PEM itself or a path."""
    if not upstream_ca:
        return ""
    if "-----BEGIN" in upstream_ca:
        return upstream_ca
    try:
        return Path(upstream_ca).read_text(encoding="ascii")
    except OSError as e:
        raise ValueError(f"upstream_ca: cannot read {upstream_ca}: {e.strerror}") from e


def write_upstream_bundle(confdir: Path, upstream_ca: str) -> Path:
    """Write certifi's roots + the extra CA atomically into the confdir; returns the path."""
    extra = upstream_ca_pem(upstream_ca)
    text = Path(certifi.where()).read_text(encoding="ascii")
    if extra:
        text = text.rstrip("\n") + "\n" + extra.strip() + "\n"
    path = confdir / UPSTREAM_BUNDLE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)
    return path
