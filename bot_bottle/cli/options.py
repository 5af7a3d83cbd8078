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
