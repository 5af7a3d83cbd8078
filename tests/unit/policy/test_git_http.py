"""Smart-HTTP push detection, including case and encoding tricks."""

from __future__ import annotations

import pytest

from bot_bottle.policy.git_http import is_git_receive_pack


@pytest.mark.parametrize(
    ("method", "path", "query", "push"),
    [
        ("POST", "/o/r.git/git-receive-pack", "", True),
        ("POST", "/o/r/git-receive-pack", "", True),
        ("post", "/o/r.git/GIT-RECEIVE-PACK", "", True),
        ("POST", "/o/r.git/git-receive-pack/", "", True),
        ("POST", "/o/r.git/git%2dreceive%2dpack", "", True),
        ("POST", "/o/r.git/git%252dreceive-pack", "", True),
        ("POST", "/o/r.git/git-receive-pack;x=1", "", True),
        ("POST", "/o/r.git%2fgit-receive-pack", "", True),
        ("GET", "/o/r.git/info/refs", "service=git-receive-pack", True),
        ("GET", "/o/r.git/info/refs", "service=GIT-Receive-Pack", True),
        ("GET", "/o/r.git/info/refs", "service=git%2Dreceive%2Dpack", True),
        ("GET", "/o/r.git/info/refs/", "x=1&service=git-receive-pack", True),
        ("GET", "/o/r.git/INFO/REFS", "service=git-receive-pack", True),
        ("GET", "/o/r.git/info/refs", "service=git-upload-pack", False),
        ("POST", "/o/r.git/git-upload-pack", "", False),
        ("GET", "/o/r.git/info/refs", "", False),
        ("GET", "/repos/o/r/git/refs", "", False),
        ("GET", "/o/git-receive-pack-docs", "", False),
        ("GET", "/", "service=git-receive-pack", False),
    ],
)
def test_is_git_receive_pack(method: str, path: str, query: str, push: bool) -> None:
    assert is_git_receive_pack(method, path, query) is push
