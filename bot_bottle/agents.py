"""Agent CLIs installed from npm into bot-bottle's own prefix, never the user's global.

Bottles see the prefix read-only with `<prefix>/bin` on PATH, so an agent cannot
modify its own CLI (or another bottle's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
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
