"""`upstream_ca` must be a PEM bundle of CA certificates: checked when the plan is
resolved (`bot-bottle check`), naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.resolver import resolve

TEXT = "bottles: {dev: {egress: {upstream_ca: ca.pem}}}\nagents: {c: {bottle: dev}}"
CA = trustme.CA()
LEAF = CA.issue_cert("api.example.test")


def _resolve(loaded: Callable[[str], LoadedManifest], tmp_path: Path, data: bytes) -> None:
    (tmp_path / "ca.pem").write_bytes(data)
    resolve(loaded(TEXT), "c", {})


def test_ca_certificate_is_accepted(
    loaded: Callable[[str], LoadedManifest], tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(CA.cert_pem.bytes())
    plan = resolve(loaded(TEXT), "c", {})
    assert plan.egress.upstream_ca == str((tmp_path / "ca.pem").resolve())
    # A bundle of two CAs (a root and an intermediate) is fine too.
    _resolve(loaded, tmp_path, CA.cert_pem.bytes() + CA.create_child_ca().cert_pem.bytes())


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"not a certificate\n", "not a PEM certificate bundle"),
        (LEAF.cert_chain_pems[0].bytes(), "is not a CA"),
        (CA.cert_pem.bytes() + LEAF.private_key_pem.bytes(), "contains a private key"),
        (
            b"-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n",
            "does not parse as X.509",
        ),
        (b"", "not a PEM certificate bundle"),
    ],
    ids=["text", "leaf", "private-key", "garbage-der", "empty"],
)
def test_wrong_file_is_refused_with_field_path(
    loaded: Callable[[str], LoadedManifest], tmp_path: Path, data: bytes, fragment: str
) -> None:
    with pytest.raises(ManifestError) as info:
        _resolve(loaded, tmp_path, data)
    assert info.value.path == "bottles.dev.egress.upstream_ca"
    assert fragment in str(info.value) and info.value.exit_code == 2
