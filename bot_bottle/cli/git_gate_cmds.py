"""`bot-bottle git-gate ...`: the git gate sidecar's entry point."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


@click.group("git-gate")
def git_gate() -> None:
    """The git gate sidecar: serves the bottle's remotes, checks and forwards pushes."""


@git_gate.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Gate config JSON (remotes, upstream URLs, ref rules; no secrets).",
)
@click.option("--listen", required=True, help="HOST:PORT (port 0 picks one) or unix:PATH.")
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path),
    default=None,
    help="The bottle's audit.jsonl; one record per push.",
)
@click.option(
    "--state",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for the mirrors (default: a new temporary directory).",
)
def serve(config_path: Path, listen: str, audit_log: Path | None, state: Path | None) -> None:
    """Serve until killed; prints `READY <addr>` once it accepts connections.

    Upstream credentials come from this process's environment only:
    BOT_BOTTLE_GIT_SSH_KEY (+ BOT_BOTTLE_GIT_SSH_KNOWN_HOSTS), GIT_SSH_COMMAND or
    SSH_AUTH_SOCK for ssh, a remote's token_slot variable for https.
    """  # fmt: skip
    from bot_bottle.sidecars.git_gate.config import load_config
    from bot_bottle.sidecars.git_gate.server import Gate
    from bot_bottle.sidecars.git_gate.server import serve as run_server

    config = load_config(config_path)
    root = state or Path(tempfile.mkdtemp(prefix="bot-bottle-git-gate-"))
    gate = Gate(config, config_path, root, audit_log, dict(os.environ))
    try:
        run_server(gate, listen)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--listen") from None
    except KeyboardInterrupt:
        pass
