"""The user's own settings: `$BOT_BOTTLE_CONFIG`, else `config.yaml` in the platform
config dir (`~/.config/bot-bottle/config.yaml` on Linux). Optional; today it holds the
notification hook:

    notify:
      command: [notify-send, "bot-bottle"]   # argv, or one string run by /bin/sh -c
      timeout: 10                            # seconds, then the hook's group is killed

It is the operator's file, on the host: never the manifest's directory, which the agent
may write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0


class UserConfigError(BotBottleError):
    """The user's config file is unreadable or malformed."""

    exit_code = 2


@dataclass(frozen=True)
class NotifyHook:
    """A command run with one request as JSON on its stdin."""

    argv: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class UserConfig:
    notify: NotifyHook | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("BOT_BOTTLE_CONFIG"):
        return Path(env["BOT_BOTTLE_CONFIG"])
    from platformdirs import user_config_dir

    return Path(user_config_dir("bot-bottle")) / "config.yaml"


def load_user_config(env: Mapping[str, str] | None = None) -> UserConfig:
    """The user's config (empty when the file does not exist); UserConfigError naming
    the file and the field when it is malformed."""
    path = config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig()
    except OSError as e:
        raise UserConfigError(f"cannot read {path}: {e.strerror}", "fix its permissions") from e
    import yaml  # only when there is a file: `run` must not pay for it otherwise

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserConfigError(f"{path} is not valid YAML: {e}", "fix the file") from e
    if raw is None:
        return UserConfig()
    if not isinstance(raw, dict):
        raise UserConfigError(f"{path}: expected a mapping at the top", "see docs/supervise.md")
    unknown = sorted(set(raw) - {"notify"})
    if unknown:
        raise UserConfigError(f"{path}: unknown setting {unknown[0]!r}",
                              "the settings are: notify")  # fmt: skip
    notify = raw.get("notify")
    return UserConfig(notify=None if notify is None else _notify(path, notify))


def _notify(path: Path, raw: Any) -> NotifyHook:
    where = f"{path}: notify"
    if not isinstance(raw, dict) or set(raw) - {"command", "timeout"}:
        raise UserConfigError(f"{where}: expected `command` and optional `timeout`",
                              "e.g. notify: {command: [notify-send, bot-bottle]}")  # fmt: skip
    command = raw.get("command")
    if isinstance(command, str) and command.strip():
        argv: tuple[str, ...] = ("/bin/sh", "-c", command)
    elif (isinstance(command, list) and command
          and all(isinstance(a, str | int | float) for a in command)):  # fmt: skip
        argv = tuple(str(a) for a in command)
    else:
        raise UserConfigError(f"{where}.command: a list of arguments or a shell command",
                              "e.g. command: [notify-send, bot-bottle]")  # fmt: skip
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise UserConfigError(f"{where}.timeout: a number of seconds", "e.g. timeout: 10")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise UserConfigError(f"{where}.timeout: between 0 and {MAX_TIMEOUT:g} seconds",
                              "e.g. timeout: 10")  # fmt: skip
    return NotifyHook(argv, float(timeout))
