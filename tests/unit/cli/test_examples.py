"""Every shipped example passes `bot-bottle check`, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_checks(path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "bot_bottle", "check", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # 0, or 1: valid, but a run on this host would stop (a token unset); never 2 (invalid)
    assert p.returncode in (0, 1), p.stderr
    assert p.stdout.startswith("ok") and "Traceback" not in p.stderr
    assert p.returncode == 0 or "blocked: `run` would stop" in p.stdout
