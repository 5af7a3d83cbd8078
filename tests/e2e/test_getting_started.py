"""docs/getting-started.md is what a first session really prints: the page is written
by scripts/getting_started.py, and this runs it again and fails on any difference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "getting_started.py"


def test_getting_started_page_matches_a_real_session(bwrap_ok: None) -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                       text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
