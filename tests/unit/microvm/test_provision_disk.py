"""The provision disk: a tar of the guest's files, whole sectors, nothing outside."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from bot_bottle.backends.microvm.provision_disk import GuestFile, write


def test_files_round_trip_with_modes_in_whole_sectors(tmp_path: Path) -> None:
    out = write([GuestFile("egress-ca.pem", b"PEM\n"), GuestFile("bin/x", b"#!/bin/sh\n", 0o755)],
                tmp_path / "p.tar")  # fmt: skip
    assert out.stat().st_size % 512 == 0
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"egress-ca.pem", "bin/x"}
        assert members["bin/x"].mode == 0o755 and members["egress-ca.pem"].uid == 0
        f = tar.extractfile("egress-ca.pem")
        assert f is not None and f.read() == b"PEM\n"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape", "a/../../b", ""])
def test_paths_outside_the_files_directory_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        write([GuestFile(bad, b"x")], tmp_path / "p.tar")
