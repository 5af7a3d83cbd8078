"""Options shared by commands that read a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def manifest_option(f: F) -> F:
    return click.option(
        "-f",
        "--manifest",
        "manifest_file",
        metavar="FILE",
        default=None,
        help="Manifest to read (default: $BOT_BOTTLE_MANIFEST, else the nearest "
        "bot-bottle.yaml here or above).",
    )(f)


def locate(manifest_file: str | None) -> Path:
    """The manifest a command reads (`location.find_manifest`); when it was found above
    the current directory, say which file it is, on stderr."""
    from bot_bottle.manifest.location import find_manifest

    path = find_manifest(manifest_file)
    if manifest_file is None and path.parent != Path.cwd():
        click.echo(f"using {path}", err=True)
    return path


class SlugType(click.ParamType[str]):
    """A bottle slug on the command line: a plain name, never a path."""

    name = "slug"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from bot_bottle.names import is_slug

        if not is_slug(value):
            self.fail(f"{value!r} is not a bottle name (see `bot-bottle ls`)", param, ctx)
        return str(value)


SLUG = SlugType()
