"""Checking an operator's `upstream_ca` before a launch: PEM, X.509, and a CA.

The sidecar trusts this bundle for every upstream TLS connection, so a wrong file
either breaks TLS at run time (a leaf certificate, a typo'd path) or, worse, carries
something that should not be there (a private key). Both are refused at check time,
naming the field.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

MAX_BUNDLE = 1 << 20


def ca_bundle_error(path: Path) -> str | None:
    """Why the file at `path` is not a PEM bundle of CA certificates, or None if it is."""
    try:
        if path.stat().st_size > MAX_BUNDLE:
            return f"{path} is larger than {MAX_BUNDLE >> 20} MiB; expected a PEM CA bundle"
        data = path.read_bytes()
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"
    return ca_pem_error(data, str(path))


def ca_pem_error(data: bytes, name: str) -> str | None:
    """Why `data` (read from `name`) is not a PEM bundle of CA certificates, or None.
    The launch checks the very bytes it hands to egress with this, not a second read."""
    if len(data) > MAX_BUNDLE:
        return f"{name} is larger than {MAX_BUNDLE >> 20} MiB; expected a PEM CA bundle"
    if b"PRIVATE KEY-----" in data:
        return f"{name} contains a private key; give only the CA certificate(s)"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return f"{name} is not a PEM certificate bundle (no BEGIN CERTIFICATE block)"
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        return f"{name} does not parse as X.509 certificates: {e}"
    for i, cert in enumerate(certs):
        try:
            ext = cert.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = ext.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            subject = cert.subject.rfc4514_string() or "(no subject)"
            return (
                f"certificate {i} in {name} ({subject}) is not a CA "
                "(it lacks basicConstraints CA:TRUE); give the issuing CA, not a server certificate"
            )
    return None
