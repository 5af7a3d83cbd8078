"""`Git.objects` against real git: objects come back whole and in order, a missing
one is an error, and one over the size limit is refused before it is read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot_bottle.sidecars.git_gate.git import Git, GitFailed, ObjectTooLarge

pytestmark = pytest.mark.integration


def test_objects(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    git = Git(repo, {"PATH": "/usr/bin:/bin"})
    small = git.run("hash-object", "-w", "--stdin", stdin=b"small\n").stdout.decode().strip()
    big = git.run("hash-object", "-w", "--stdin", stdin=b"\0" * 5000).stdout.decode().strip()
    assert list(git.objects([big, small])) == [
        (big, "blob", b"\0" * 5000),
        (small, "blob", b"small\n"),
    ]
    with pytest.raises(ObjectTooLarge, match="5,000 bytes"):
        list(git.objects([small, big], max_size=4096))
    with pytest.raises(GitFailed, match="missing"):
        list(git.objects(["0" * 39 + "1"]))
