"""`bot-bottle check` refuses the new classes of bad configuration with exit 2, one
message naming the field, and no traceback: cleartext auth, uncompilable DLP
patterns, a non-CA upstream_ca, an oversized manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trustme

AGENT = "\nagents: {c: {bottle: dev}}\n"


@pytest.mark.parametrize(
    ("egress", "fragment"),
    [
        (
            "{routes: [{host: a.com, scheme: http, auth: {scheme: Bearer, token_ref: T}}]}",
            "bottles.dev.egress.routes[0].auth: a credential is injected only over verified TLS",
        ),
        (
            "{dlp: {patterns: ['ok', 'a(?=b)']}}",
            "bottles.dev.egress.dlp.patterns[1]: invalid regex",
        ),
        ("{upstream_ca: leaf.pem}", "bottles.dev.egress.upstream_ca: certificate 0 in"),
    ],
    ids=["http-auth", "pattern", "upstream-ca"],
)
def test_check_refuses_with_field(tmp_path: Path, egress: str, fragment: str) -> None:
    trustme.CA().issue_cert("x.test").cert_chain_pems[0].write_to_path(str(tmp_path / "leaf.pem"))
    (tmp_path / "bot-bottle.yaml").write_text(f"bottles: {{dev: {{egress: {egress}}}}}" + AGENT)
    p = subprocess.run(
        [sys.executable, "-m", "bot_bottle", "check"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert fragment in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


def test_check_refuses_huge_manifest_quickly(tmp_path: Path) -> None:
    routes = "".join(f"      - {{host: h{i}.example.com}}\n" for i in range(100_000))
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  dev:\n    egress:\n     routes:\n" + routes + AGENT
    )
    p = subprocess.run(
        [sys.executable, "-m", "bot_bottle", "check"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=30,
    )  # fmt: skip
    assert p.returncode == 2 and "a manifest may be at most 128 KiB" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
