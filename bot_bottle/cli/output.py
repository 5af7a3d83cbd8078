"""The rich console the commands print through.

On a terminal rich wraps text to its width. Into a pipe or a file it would wrap at 80
columns, splitting a path, a command to run or a message someone greps for over two
lines (where it fits depends on how long the paths around it happen to be); there,
text is printed unwrapped. Tables and rules still fit 80 columns.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def console(*, stderr: bool = False, highlight: bool = True) -> Console:
    from rich.console import Console  # imported on use: most commands print no rich

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=highlight, soft_wrap=not stream.isatty())
