"""Fixtures for the egress unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from egress_unit_env import Env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)
