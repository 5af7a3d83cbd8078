"""An operator DLP pattern that backtracks catastrophically in a regex engine like
Python's `re` cannot stall the real egress: it is scanned by Hyperscan in one pass,
and it still catches what it names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from egress_harness import Egress, curl
from egress_upstream import Upstream

pytestmark = pytest.mark.integration


def test_catastrophic_pattern_does_not_stall_the_proxy(
    make_egress: Callable[..., Egress], upstream: Upstream, tmp_path: Path
) -> None:
    eg = make_egress(doc_extra={"dlp": {"enabled": True, "patterns": ["(a+)+$"]}})
    body = tmp_path / "body"
    body.write_bytes(b"a" * 64 + b"!")  # 2**64 steps for a backtracking engine
    code, text, err = curl(
        eg,
        "--max-time",
        "20",
        "--data-binary",
        f"@{body}",
        f"https://api.example.test:{upstream.port}/v1/x",
        timeout=30,
    )
    assert code == 200, (text, err)
    body.write_bytes(b"note aaaa")
    code, text, _ = curl(
        eg, "--data-binary", f"@{body}", f"https://api.example.test:{upstream.port}/v1/x"
    )
    assert code == 403 and "custom:0" in text, text
