"""The user's config: where it is, the notify hook's two forms, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.state.user_config import NotifyHook, UserConfigError, config_path, load_user_config


def _load(tmp_path: Path, text: str | None) -> object:
    p = tmp_path / "config.yaml"
    if text is not None:
        p.write_text(text)
    return load_user_config({"BOT_BOTTLE_CONFIG": str(p)}).notify


def test_where_it_lives(tmp_path: Path) -> None:
    assert config_path({"BOT_BOTTLE_CONFIG": "/x/c.yaml"}) == Path("/x/c.yaml")
    assert config_path({}).name == "config.yaml" and "bot-bottle" in str(config_path({}))


def test_notify_forms(tmp_path: Path) -> None:
    assert _load(tmp_path, None) is None
    assert _load(tmp_path, "") is None
    assert _load(tmp_path, "notify: {command: [notify-send, hi]}") == NotifyHook(
        ("notify-send", "hi"), 10.0
    )
    assert _load(tmp_path, "notify: {command: 'cat >> log', timeout: 2}") == NotifyHook(
        ("/bin/sh", "-c", "cat >> log"), 2.0
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("notify: [a]", "notify: expected `command`"),
        ("notify: {command: []}", "notify.command"),
        ("notify: {command: [a], timeout: 0}", "notify.timeout"),
        ("notify: {command: [a], timeout: yes}", "notify.timeout"),
        ("notfy: {}", "unknown setting 'notfy'"),
        ("[1", "not valid YAML"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(UserConfigError, match=r"config\.yaml") as e:
        _load(tmp_path, text)
    assert says in e.value.message
