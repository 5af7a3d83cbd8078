"""The bottle's CA: made once per bottle, before mitmproxy starts, and kept on resume."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from bot_bottle.sidecars.egress.trust import AGENT_CA_FILE, CA_KEY_FILE, ensure_agent_ca


def test_a_fresh_confdir_gets_an_ec_ca_only_the_owner_can_read(tmp_path: Path) -> None:
    cert_path = ensure_agent_ca(tmp_path)
    assert cert_path == tmp_path / AGENT_CA_FILE
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    key_file = tmp_path / CA_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # mitmproxy's layout: key then certificate in one file.
    assert b"PRIVATE KEY" in key_file.read_bytes()
    assert cert_path.read_bytes() in key_file.read_bytes()


def test_a_resumed_bottle_keeps_the_ca_its_trust_store_holds(tmp_path: Path) -> None:
    first = ensure_agent_ca(tmp_path).read_bytes()
    assert ensure_agent_ca(tmp_path).read_bytes() == first


def test_each_bottle_has_its_own_ca(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert (
        ensure_agent_ca(tmp_path / "a").read_bytes() != ensure_agent_ca(tmp_path / "b").read_bytes()
    )
