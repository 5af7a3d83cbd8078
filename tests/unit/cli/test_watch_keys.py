"""`watch`'s key reader and its cleaning of what agents wrote, without a terminal."""

from __future__ import annotations

from bot_bottle.cli.watch_cmd import DOWN, ENTER, ESC, UP, keys_of
from bot_bottle.cli.watch_view import clean


def test_arrows_enter_and_unknown_sequences() -> None:
    assert list(keys_of("\x1b[A\x1bOBg1\r")) == [UP, DOWN, "g", "1", ENTER]
    assert list(keys_of("\x1b[1;5Cq")) == ["q"]  # ctrl-right: ignored whole
    assert list(keys_of("\x1b")) == [ESC]


def test_escape_sequences_in_agent_text_are_defused() -> None:
    hostile = "ok\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202egnp.exe\nnext"
    shown = clean(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\n" not in shown and shown.startswith("ok\ufffd")
