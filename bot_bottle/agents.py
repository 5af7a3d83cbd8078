"""Agent CLIs installed from npm into bot-bottle's own prefix, never the user's global.

Bottles see the prefix read-only with `<prefix>/bin` on PATH, so an agent cannot
modify its own CLI (or another bottle's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle.errors import BotBottleError

PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex"}


def install_argv(names: Sequence[str], prefix: Path, npm: str = "npm") -> list[str]:
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        raise BotBottleError(
            f"unknown agent CLI {', '.join(unknown)} (known: {', '.join(PACKAGES)})",
            "bot-bottle agents install claude codex",
        )
    return [npm, "install", "--global", "--prefix", str(prefix), "--no-fund", "--no-audit",
            "--progress=true", "--loglevel=http", *(PACKAGES[n] for n in names)]  # fmt: skip


def install(names: Sequence[str], prefix: Path) -> None:
    """Run npm with its progress on this terminal; raise with the fix on failure."""
    npm = shutil.which("npm")
    if npm is None:
        raise BotBottleError("npm is not installed", "install Node.js 18+ and npm")
    prefix.mkdir(parents=True, exist_ok=True)
    argv = install_argv(names, prefix, npm)
    print(f"installing {' '.join(PACKAGES[n] for n in names)} into {prefix}", flush=True)
    rc = subprocess.run(argv, check=False).returncode
    if rc != 0:
        raise BotBottleError(f"npm install failed (exit {rc})", "see npm's output above")
    for name, version in installed(prefix).items():
        print(f"  {name} {version} -> {prefix / 'bin' / name}", flush=True)


def installed(prefix: Path) -> dict[str, str]:
    """Installed agent CLIs and their versions, read from package.json."""
    out = {}
    for name, pkg in PACKAGES.items():
        manifest = prefix / "lib" / "node_modules" / pkg / "package.json"
        if (prefix / "bin" / name).exists() and manifest.is_file():
            out[name] = str(json.loads(manifest.read_text()).get("version", "?"))
    return out


def require_installed(command: str, prefix: Path) -> None:
    """Refuse, before anything starts, to launch an agent CLI that bot-bottle installs
    but has not installed yet (bottles that take their tools from the host)."""
    if command in PACKAGES and not (prefix / "bin" / command).exists():
        raise BotBottleError(
            f"{command} is not installed for bottles (looked in {prefix / 'bin'})",
            f"bot-bottle agents install {command}",
        )


def binary(name: str, prefix: Path) -> Path:
    """The installed CLI `name` (claude, codex), or a typed error with the fix."""
    if name not in PACKAGES:
        raise BotBottleError(
            f"unknown agent CLI {name!r} (known: {', '.join(PACKAGES)})",
            "e.g. bot-bottle agents exec claude -- setup-token",
        )
    path = prefix / "bin" / name
    if not path.exists():
        raise BotBottleError(
            f"{name} is not installed for bottles (looked in {prefix / 'bin'})",
            f"bot-bottle agents install {name}",
        )
    return path


def host_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for an agent CLI run on the host: the user's, without bot-bottle's
    own settings (`BOT_BOTTLE_*` point at bot-bottle's state, not the agent's). Claude
    Code's self-update stays off: it would rewrite the prefix every bottle runs from."""
    env = {k: v for k, v in environ.items() if not k.startswith("BOT_BOTTLE_")}
    env["DISABLE_AUTOUPDATER"] = "1"
    return env


def exec_on_host(name: str, prefix: Path, args: Sequence[str], environ: Mapping[str, str]
                 ) -> None:  # fmt: skip
    """Replace this process with the installed CLI, a plain host process (for `claude
    setup-token`, `codex login`): no bottle, no proxy. Python ignores SIGPIPE and
    SIGXFSZ, and an ignored signal stays ignored across exec; the CLI gets defaults."""
    path = binary(name, prefix)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    os.execve(path, [name, *args], host_env(environ))
