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


def test_a_huge_agent_field_cannot_push_the_rest_off_the_screen() -> None:
    """A 4,000-character question and a denied request with a 20,000-character path
    filled the screen (which crops what does not fit): the other requests, the prompt
    being typed and the outcome of a grant were never seen. Each agent-written field is
    cut short; `bot-bottle requests` shows it whole."""
    from rich.console import Console

    from bot_bottle.cli.watch_view import BottleRow, Snapshot, render
    from bot_bottle.policy.supervise import Ask
    from bot_bottle.state.requests import AskRecord

    huge = AskRecord("r-00000001", "b", Ask("question", question="x " * 2000), 1.0)
    other = AskRecord("r-00000002", "b", Ask("route", reason="r", host="docs.test"), 2.0)
    denial = {"kind": "request", "decision": "deny", "rule": "route", "method": "GET",
              "host": "a.test", "path": "/" + "p" * 20000, "ts": "2026-12-01T00:00:00"}  # fmt: skip
    row = BottleRow("b-slug", "running", "namespace", (huge,), (denial,))
    snap = Snapshot((row,), (("b-slug", huge), ("b-slug", other)), 3.0)
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(snap, 1, "FOOTER"))
    screen = console.export_text().splitlines()[:40]  # what a 40-line terminal shows
    assert any("r-00000002" in line for line in screen), screen
    assert any("FOOTER" in line for line in screen), screen
