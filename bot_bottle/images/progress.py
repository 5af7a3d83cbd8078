"""How long work (image builds, pulls) shows on the operator's terminal.

Two kinds of line: headings (`agent-claude: Step 3/9 : RUN ...`) stay; detail (what
the step prints, a layer's pull status) is the work itself. On a terminal the detail
is one live line under the last heading, rewritten as the next arrives and cleared by
the next heading, so a long build reads as its steps while it shows it is moving.
Not on a terminal (a log, CI), every line is written as it comes, plainly: no cursor
movement, nothing lost. Lines come from Dockerfiles and the engine, never from a
bottle's credentials (builds get none).
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

_CLEAR = "\r\x1b[2K"


class LiveLines:
    """Progress on `stream` (stderr): call it with a heading, `.detail` with the rest."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._live = False

    def __call__(self, line: str) -> None:
        self._end_live()
        self._stream.write(f"{line}\n")
        self._stream.flush()

    def detail(self, line: str) -> None:
        line = "".join(c if c.isprintable() else " " for c in line).rstrip()
        if not line:
            return
        if not self._tty:
            self._stream.write(f"  {line}\n")
        else:
            width = max(20, shutil.get_terminal_size().columns - 3)
            shown = line if len(line) <= width else line[: width - 1] + "…"
            self._stream.write(f"{_CLEAR}  {shown}")
            self._live = True
        self._stream.flush()

    def done(self) -> None:
        """Clear the live line (at the end of the work)."""
        self._end_live()
        self._stream.flush()

    def _end_live(self) -> None:
        if self._live:
            self._stream.write(_CLEAR)
            self._live = False
