"""Which upstream certificates the sidecar trusts, and which CA the agent must trust.

mitmproxy's `ssl_verify_upstream_trusted_ca` *replaces* its default store, so the
bundle we hand it is certifi's roots plus the bottle's `upstream_ca` (a PEM path or
PEM text), written into the confdir. The agent trusts `AGENT_CA_FILE` from the
confdir: the bottle's own CA, which `ensure_agent_ca` creates there before mitmproxy
starts (mitmproxy loads a CA it finds instead of making one).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AGENT_CA_FILE = "mitmproxy-ca-cert.pem"
# mitmproxy's name for the CA key and certificate in one file (its `confdir` layout).
CA_KEY_FILE = "mitmproxy-ca.pem"
UPSTREAM_BUNDLE_FILE = "upstream-trust.pem"
CA_NAME = "bot-bottle egress"
CA_LIFETIME = datetime.timedelta(days=3650)  # a kept bottle may be resumed for years


def ensure_agent_ca(confdir: Path) -> Path:
    """Create the bottle's CA in `confdir` unless it is there (a resumed bottle keeps the
    CA its trust store already holds); returns the certificate's path.

    A P-256 key rather than mitmproxy's default RSA-2048: generating and loading the RSA
    key cost ~0.4 s of every sidecar start (measured with cProfile; key validation on
    load is most of it), the EC key well under a millisecond, and every TLS client an
    agent uses accepts ECDSA. mitmproxy signs each host's certificate with this key and
    serves the same public key in it, so handshakes get cheaper too. Each bottle still
    has its own CA, whose key never leaves the state directory."""
    cert_path = confdir / AGENT_CA_FILE
    key_path = confdir / CA_KEY_FILE
    if key_path.exists() and cert_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bot-bottle"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, key_pem + cert_pem, 0o600)
    _write_new(cert_path, cert_pem, 0o644)
    return cert_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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
