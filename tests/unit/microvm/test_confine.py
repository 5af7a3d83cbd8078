"""`images/guest/confine.py` never runs its program without a filter."""

from __future__ import annotations

import os
import subprocess
import sys

from bot_bottle.images.guest import confine


def _run(program: bytes) -> subprocess.CompletedProcess[str]:
    r, w = os.pipe()
    os.write(w, program)
    os.close(w)
    try:
        return subprocess.run([sys.executable, "-I", "-S", confine.__file__, str(r), "--",
                               "echo", "ran unconfined"], pass_fds=(r,), capture_output=True,
                              text=True, timeout=30, check=False)  # fmt: skip
    finally:
        os.close(r)


def test_an_empty_filter_stops_it() -> None:
    r = _run(b"")
    assert r.returncode != 0 and "ran unconfined" not in r.stdout
    assert "no seccomp filter" in r.stderr


def test_a_filter_cut_short_stops_it() -> None:
    r = _run(b"\x06\x00\x00\x00\x00\x00\xff")  # seven bytes: not whole instructions
    assert r.returncode != 0 and "ran unconfined" not in r.stdout
