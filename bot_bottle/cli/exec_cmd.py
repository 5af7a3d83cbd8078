"""`bot-bottle exec SLUG [-- CMD...]`: a shell or a command in a running bottle."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from bot_bottle.cli.options import SLUG
from bot_bottle.errors import StateError

if TYPE_CHECKING:
    from bot_bottle.state.store import StateStore

# What `exec` runs with no command: the bottle's own shell.
SHELL = ("/bin/sh", "-c", 'exec "${SHELL:-/bin/sh}"')


def exec_in_bottle(store: StateStore, slug: str, argv: Sequence[str], *, tty: bool) -> int:
    """Run `argv` (empty: the bottle's shell) in running bottle `slug`, with the agent's
    isolation (the backend's `exec_in`); its exit code. Refuses a bottle not running."""
    from bot_bottle.backends import registry
    from bot_bottle.backends.spec import BottleSpec
    from bot_bottle.launch import status_of

    meta = store.load(slug)
    status = status_of(meta)
    if status not in ("running", "degraded"):
        kept = status in ("stopped", "exited")
        raise StateError(
            f"bottle {slug} is not running ({status}): exec runs beside a running agent",
            f"`bot-bottle resume {slug}`, then exec from another terminal" if kept
            else "`bot-bottle ls` lists the running bottles",
        )  # fmt: skip
    spec = BottleSpec(
        slug=slug,
        state_dir=store.dir(slug),
        workspace_mode=str(meta.extra.get("workspace_mode", "none")),
        workspace_path=str(meta.extra.get("workspace_path", "")),
    )
    return registry.get(meta.backend).exec_in(spec, tuple(argv) or SHELL, tty=tty)


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("slug", type=SLUG)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def exec_(slug: str, command: tuple[str, ...]) -> None:
    """Open a shell, or run COMMAND, in running bottle SLUG, from another terminal:

    \b
        bot-bottle exec SLUG                   the bottle's shell
        bot-bottle exec SLUG -- git status     a command; its exit code is exec's

    It runs beside the agent with exactly the agent's isolation: same user, workspace,
    environment (proxy and CA included), no network but the egress proxy, no
    capabilities, the same seccomp filter; it sees no more of the host than the agent
    does. A terminal is allocated when stdin is one. The bottle must be running
    (`bot-bottle ls`); a kept, stopped one is started with `bot-bottle resume`.
    """
    from bot_bottle.state.store import StateStore

    sys.exit(exec_in_bottle(StateStore(), slug, command, tty=sys.stdin.isatty()))
