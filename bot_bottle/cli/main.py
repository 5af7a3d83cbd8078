"""The `bot-bottle` command: a lazy click group over `commands.COMMANDS`."""

from __future__ import annotations

import importlib
import sys

import click

from bot_bottle.cli.commands import COMMANDS
from bot_bottle.errors import BotBottleError


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand is invoked or helped."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr = entry[0].split(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bot-bottle", prog_name="bot-bottle")
def cli() -> None:
    """Run AI coding agents in bottles: sandboxes whose only ways out are an egress
    proxy that allows declared routes and a git gate that scans pushes.

    Start with `bot-bottle init`, then `bot-bottle check` and `bot-bottle run AGENT`.
    """


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("\naborted", err=True)  # after a ^C at a prompt, on its own line
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BotBottleError as e:
        click.secho(f"error: {e.message}", fg="red", err=True)
        if e.fix:
            click.echo(f"  fix: {e.fix}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
