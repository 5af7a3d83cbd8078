"""Unix sockets at paths longer than a socket address can hold."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from bot_bottle import unix_socket


def deep(tmp_path: Path) -> Path:
    d = tmp_path / ("d" * 60) / ("e" * 60)
    d.mkdir(parents=True)
    path = d / "exec.sock"
    assert len(str(path)) > 108  # too long for bind(2) by name
    return path


def test_a_socket_deeper_than_an_address_listens_and_connects(tmp_path: Path) -> None:
    path = deep(tmp_path)
    with pytest.raises(OSError):
        socket.socket(socket.AF_UNIX).bind(str(path))
    path.write_text("stale")  # a leftover at the path is replaced
    with unix_socket.listen(path) as server:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_ISSOCK(path.stat().st_mode)
        with socket.socket(socket.AF_UNIX) as client:
            unix_socket.connect(client, path)
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"


def test_connecting_where_nothing_listens_says_so(tmp_path: Path) -> None:
    path = deep(tmp_path)
    with socket.socket(socket.AF_UNIX) as client, pytest.raises(FileNotFoundError):
        unix_socket.connect(client, path)
    with socket.socket(socket.AF_UNIX) as client, pytest.raises(FileNotFoundError):
        unix_socket.connect(client, tmp_path / "gone" / "exec.sock")


def test_a_symlinked_last_directory_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OSError):
        unix_socket.listen(tmp_path / "link" / "x.sock")
    assert not (real / "x.sock").exists()
