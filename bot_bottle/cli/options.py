"""Options shared by commands that read a manifest."""

from __future__ import annotations

from collections.abc import Callable
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
        help="Manifest to read (default: $BOT_BOTTLE_MANIFEST, else ./bot-bottle.yaml).",
    )(f)


class SlugType(click.ParamType[str]):
    """A bottle slug on the command line: a plain name, never a path."""

    name = "slug"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from bot_bottle.names import is_slug

        if not is_slug(value):
            self.fail(f"{value!r} is not a bottle name (see `bot-bottle ls`)", param, ctx)
        return str(value)


SLUG = SlugType()
