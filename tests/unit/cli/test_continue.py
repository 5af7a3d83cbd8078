"""`--continue` maps to each agent's own way of picking up its last conversation, and
after the agent exits bot-bottle says the host's way back (the agent's own "resume
with: claude --resume ..." hint names a command of the bottle)."""

from __future__ import annotations

import pytest

from bot_bottle.cli.bottle_cmds import _after_exit, _continue_args
from bot_bottle.errors import BotBottleError


def test_continue_args_per_agent() -> None:
    assert _continue_args("claude") == ("--continue",)
    assert _continue_args("codex") == ("resume", "--last")
    with pytest.raises(BotBottleError, match="keeps no conversations"):
        _continue_args("command")


def test_after_exit_names_the_host_command(capsys: pytest.CaptureFixture[str]) -> None:
    _after_exit("claude-moss-0001", "claude", kept=True)
    err = capsys.readouterr().err
    assert "bot-bottle resume claude-moss-0001 --continue" in err
    _after_exit("claude-moss-0002", "claude", kept=False)
    err = capsys.readouterr().err
    assert "removed" in err and "--keep" in err
    _after_exit("cmd-moss-0003", "command", kept=True)
    assert capsys.readouterr().err == "bottle kept: bot-bottle resume cmd-moss-0003\n"
