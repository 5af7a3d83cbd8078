"""The bounded log a guest writes into: the first `cap` bytes and the last `tail`, with
a line saying how much was dropped between them."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from bot_bottle.backends.microvm import capped_log
from bot_bottle.backends.microvm.guest_inputs import exit_status


def test_a_short_log_is_kept_whole(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    with capped_log.socket_into(log, cap=1024, tail=64) as rec, socket.socket(fileno=rec.fd) as s:
        s.sendall(b"booted\nbot-bottle-guest: status abc 0\n")
    assert log.read_bytes() == b"booted\nbot-bottle-guest: status abc 0\n"


def test_a_flood_is_cut_and_its_end_kept(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    flood = b"A" * 5000 + b"B" * 3000 + b"\nbot-bottle-guest: status abc 7\n"
    with capped_log.socket_into(log, cap=1000, tail=100) as rec, socket.socket(fileno=rec.fd) as s:
        for i in range(0, len(flood), 333):  # in pieces across the cap
            s.sendall(flood[i : i + 333])
    data = log.read_bytes()
    assert data.startswith(b"A" * 1000)
    assert data.endswith(flood[-100:])
    assert b"bytes not kept" in data
    assert len(data) < 1000 + 100 + 200
    dropped = len(flood) - 1000 - 100
    assert f"{dropped:,} bytes not kept".encode() in data
    assert exit_status(0, capped_log.tail(log), "abc") == 7


def test_a_pipe_writer_is_recorded_once_its_end_is_closed(tmp_path: Path) -> None:
    log = tmp_path / "virtiofsd.log"
    with capped_log.pipe_into(log, cap=10, tail=4) as w:
        os.write(w, b"0123456789abcdefgh")
    data = log.read_bytes()
    assert data.startswith(b"0123456789\n[bot-bottle: 4 bytes not kept")
    assert data.endswith(b"efgh")


def test_the_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"x" * (3 << 20) + b"\nbot-bottle-guest: status abc 5\n")
    tail = capped_log.tail(log, limit=4096)
    assert len(tail) <= 4096
    assert exit_status(0, tail, "abc") == 5
    assert capped_log.tail(tmp_path / "missing") == ""


def test_nothing_is_marked_dropped_when_the_tail_holds_it_all(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    with capped_log.pipe_into(log, cap=10, tail=64) as w:
        os.write(w, b"0123456789abc\nbot-bottle-guest: status abc 0\n")
    assert log.read_bytes() == b"0123456789abc\nbot-bottle-guest: status abc 0\n"


def test_a_log_that_cannot_be_written_is_still_read_and_its_end_kept(tmp_path: Path) -> None:
    log = tmp_path / "gone" / "console.log"  # its directory does not exist
    with capped_log.socket_into(log, tail=64) as rec, socket.socket(fileno=rec.fd) as s:
        s.sendall(b"x" * (1 << 20) + b"\nbot-bottle-guest: status abc 4\n")  # not blocked
    assert not log.exists()
    assert exit_status(0, rec.recorder.tail_text(), "abc") == 4


def test_an_error_before_the_writer_started_ends_the_recording_at_once(
    tmp_path: Path,
) -> None:
    log = tmp_path / "console.log"
    start = time.monotonic()
    try:
        with capped_log.socket_into(log) as rec:
            raise RuntimeError(f"QEMU never got {rec.fd}")  # its end is still open here
    except RuntimeError:
        pass
    assert time.monotonic() - start < capped_log.JOIN_TIMEOUT / 2
