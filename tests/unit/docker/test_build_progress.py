"""Build progress: steps stay, what a step prints shows as it comes (one live line on a
terminal, plain lines elsewhere), and nothing a Dockerfile prints drives the terminal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot_bottle.images import build
from bot_bottle.images.progress import LiveLines


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_not_a_terminal_every_line_plainly() -> None:
    out = Stream(tty=False)
    lines = LiveLines(out)
    lines("img: Step 1/2 : RUN make")
    lines.detail("img: compiling")
    lines.detail("img: \x1b]0;owned\x07done\r")
    lines.done()
    assert out.getvalue() == "img: Step 1/2 : RUN make\n  img: compiling\n  img:  ]0;owned done\n"


def test_terminal_one_live_line_cleared_by_the_next_heading() -> None:
    out = Stream(tty=True)
    lines = LiveLines(out)
    lines("img: Step 1/2 : RUN make")
    lines.detail("img: compiling a")
    lines.detail("img: compiling b")
    lines("img: Step 2/2 : LABEL x")
    lines.done()
    assert out.getvalue() == (
        "img: Step 1/2 : RUN make\n"
        "\r\x1b[2K  img: compiling a\r\x1b[2K  img: compiling b\r\x1b[2K"
        "img: Step 2/2 : LABEL x\n"
    )


class FakeAPI:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def build(self, **kw: Any) -> Iterator[dict[str, Any]]:
        yield from self.chunks


class FakeClient:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.api = FakeAPI(chunks)


def test_build_output_is_streamed_as_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [
        {"stream": "Step 1/2 : FROM base\n"},
        {"status": "Pulling fs layer", "id": "abc"},
        {"status": "Downloading", "id": "abc", "progress": "[=>  ] 1MB/9MB"},
        {"status": "Downloading", "id": "abc", "progress": "[==> ] 2MB/9MB"},
        {"status": "Pull complete", "id": "abc"},
        {"stream": " ---> 1234\n"},
        {"stream": "Step 2/2 : RUN echo MARK\n"},
        {"stream": " ---> Running in 99\n"},
        {"stream": "MARK\n"},
        {"stream": "Removing intermediate container 99\n"},
        {"stream": "Successfully built 5678\n"},
    ]
    monkeypatch.setattr(build, "connect", lambda timeout=0: FakeClient(chunks))
    headings: list[str] = []
    details: list[str] = []
    spec = build.ImageSpec("img", Path("/ctx"))
    build._docker_build(Path("/ctx"), "t", spec, headings.append, details.append)
    assert headings == ["img: Step 1/2 : FROM base", "img: Step 2/2 : RUN echo MARK",
                        "img: built t"]  # fmt: skip
    assert details == ["img: Pulling fs layer abc", "img: Downloading abc",
                       "img: Pull complete abc", "img: MARK"]  # fmt: skip
