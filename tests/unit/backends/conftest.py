"""Backend unit tests describe a launcher that is not root unless a test says so: the
user an agent runs as depends on it (see `backends.host_user`), and these tests run
as root in CI and as a mapped root under `unshare -r`."""

from __future__ import annotations

import pytest

from bot_bottle.backends import host_user


@pytest.fixture(autouse=True)
def launcher_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_user, "_euid", lambda: 1000)
