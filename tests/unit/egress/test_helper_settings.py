"""The egress helper's settings: on by default, an idle time that must be a number of
seconds, and a build digest that changes with the code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot_bottle.errors import BotBottleError
from bot_bottle.sidecars.egress import helper


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("on", True), ("1", True), ("off", False), ("0", False),
                      ("No", False), ("false", False)],
)  # fmt: skip
def test_enabled_unless_turned_off(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                   on: bool) -> None:  # fmt: skip
    if value is None:
        monkeypatch.delenv(helper.ENABLED_ENV, raising=False)
    else:
        monkeypatch.setenv(helper.ENABLED_ENV, value)
    assert helper.enabled() is on


def test_idle_defaults_and_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(helper.IDLE_ENV, raising=False)
    assert helper.idle_seconds() == helper.DEFAULT_IDLE
    monkeypatch.setenv(helper.IDLE_ENV, "2.5")
    assert helper.idle_seconds() == 2.5


@pytest.mark.parametrize("bad", ["soon", "-1", "0", "nan", "inf", "1e400"])
def test_a_bad_idle_time_names_the_variable(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(helper.IDLE_ENV, bad)
    with pytest.raises(BotBottleError, match=helper.IDLE_ENV):
        helper.idle_seconds()


def test_the_build_digest_follows_the_source(tmp_path: Path) -> None:
    before = helper.build_id()
    assert helper.build_id() == before
    source = Path(helper.__file__)
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert helper.build_id() != before
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert helper.build_id() == before


def test_the_socket_path_fits_a_unix_address(tmp_path: Path) -> None:
    assert len(helper.socket_path(tmp_path).name) <= 24
