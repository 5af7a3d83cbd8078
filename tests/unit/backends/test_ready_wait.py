"""The one wait for READY (`sidecars.process.wait_ready`), fed from a descriptor or,
for a Docker bottle, from a stream through `pipe_from`: the marker line is returned,
an end before it and a deadline each raise, and the lines before it are kept."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from bot_bottle.sidecars.process import SidecarError, pipe_from, wait_ready

MARKER = b"bot-bottle forwarder ready"


def soon() -> float:
    return time.monotonic() + 5


def test_the_marker_line_split_across_chunks_is_found() -> None:
    fd = pipe_from(iter([b"PID 42\nbot-bottle forw", b"arder ready\nafter\n"]), "t")
    seen: list[str] = []
    try:
        assert wait_ready(fd, soon(), "bottle", seen, marker=MARKER) == MARKER.decode()
    finally:
        os.close(fd)
    assert seen == ["PID 42"]


def test_the_stream_ending_first_is_an_exit() -> None:
    fd = pipe_from(iter([b"python3: not found\n"]), "t")
    try:
        with pytest.raises(SidecarError, match="bottle exited before it was ready"):
            wait_ready(fd, soon(), "bottle", marker=MARKER)
    finally:
        os.close(fd)


def test_a_silent_stream_times_out_and_its_pump_stops_when_the_reader_goes() -> None:
    released = threading.Event()
    ended = threading.Event()

    def quiet() -> Iterator[bytes]:
        try:
            released.wait(5)
            yield b"late\n" * 20000  # more than a pipe holds: the write must fail, not block
        finally:
            ended.set()

    fd = pipe_from(quiet(), "t")
    with pytest.raises(SidecarError, match="did not report READY in time"):
        wait_ready(fd, time.monotonic() + 0.05, "bottle", marker=MARKER)
    os.close(fd)
    released.set()
    assert ended.wait(5), "the pump kept writing to a pipe nobody reads"


def test_the_default_marker_is_the_sidecars_ready() -> None:
    r, w = os.pipe()
    os.write(w, b"READY unix:/s\n")
    try:
        assert wait_ready(r, soon()) == "READY unix:/s"
    finally:
        os.close(r)
        os.close(w)
