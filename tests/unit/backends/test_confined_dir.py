"""Provisioning never follows what the agent planted: every file the launcher writes
into a bottle's HOME or workspace is created beneath the directory it was meant for,
whatever symlinks, hard links or FIFOs the agent left there (its HOME is kept for
`resume`). The victims below stand for host files outside the bottle."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fakes.executor import RecordingExecutor

from bot_bottle.backends.confined_dir import ConfinedDir, UnsafePath
from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.spec import BottleSpec

HOST = b"host file, must stay byte-identical\n"


def _bottle(tmp_path: Path) -> tuple[Path, Path, object]:
    """A prepared namespace bottle (its HOME on the host) and a host directory."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "passwd").write_bytes(HOST)
    (host / ".aws").mkdir()
    (host / ".aws" / "credentials").write_bytes(HOST)
    spec = BottleSpec(slug="a-moss-0001", state_dir=tmp_path / "state", workspace_mode="none",
                      workspace_path="")  # fmt: skip
    target = NamespaceBackend(RecordingExecutor(), bwrap="bwrap").prepare(spec)
    return tmp_path / "state" / "home", host, target


def _host_untouched(host: Path) -> None:
    assert (host / "passwd").read_bytes() == HOST
    assert (host / ".aws" / "credentials").read_bytes() == HOST
    assert sorted(p.name for p in host.iterdir()) == [".aws", "passwd"]
    assert os.listdir(host / ".aws") == ["credentials"]


def test_symlinked_directory_is_replaced_not_followed(tmp_path: Path) -> None:
    home, host, target = _bottle(tmp_path)
    (home / ".aws").symlink_to(host / ".aws")  # the agent plants ~/.aws -> host ~/.aws
    target.put_file("~/.aws/credentials", b"decoy", 0o600)  # type: ignore[attr-defined]
    _host_untouched(host)
    assert not (home / ".aws").is_symlink()
    assert (home / ".aws" / "credentials").read_bytes() == b"decoy"


def test_symlinked_file_is_replaced_not_followed(tmp_path: Path) -> None:
    home, host, target = _bottle(tmp_path)
    (home / ".claude.json").symlink_to(host / "passwd")
    (home / ".gitconfig").symlink_to(host / "new-file")  # dangling: would create it
    target.put_file("~/.claude.json", b"{}", 0o600)  # type: ignore[attr-defined]
    target.put_file("~/.gitconfig", b"[user]\n")  # type: ignore[attr-defined]
    _host_untouched(host)
    assert (home / ".claude.json").read_bytes() == b"{}"
    assert not (home / ".claude.json").is_symlink()


def test_symlink_deeper_in_the_path(tmp_path: Path) -> None:
    home, host, target = _bottle(tmp_path)
    (home / ".bot-bottle").mkdir()
    (home / ".bot-bottle" / "skills").symlink_to(host)
    (home / ".config").symlink_to("../../../host")  # relative, climbing out
    target.put_file("~/.bot-bottle/skills/s/passwd", b"x")  # type: ignore[attr-defined]
    target.put_file("~/.config/passwd", b"x")  # type: ignore[attr-defined]
    _host_untouched(host)


def test_hard_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    home, host, target = _bottle(tmp_path)
    os.link(host / "passwd", home / ".gitconfig")
    target.put_file("~/.gitconfig", b"[user]\n")  # type: ignore[attr-defined]
    _host_untouched(host)
    assert os.stat(host / "passwd").st_nlink == 1
    assert (home / ".gitconfig").read_bytes() == b"[user]\n"


def test_fifo_is_replaced_without_blocking(tmp_path: Path) -> None:
    home, _host, target = _bottle(tmp_path)
    os.mkfifo(home / ".gitconfig")
    (home / ".bot-bottle").mkdir()
    os.mkfifo(home / ".bot-bottle" / "ca-bundle.pem")
    target.put_file("~/.gitconfig", b"[user]\n")  # type: ignore[attr-defined]
    target.put_file("~/.bot-bottle/ca-bundle.pem", b"pem")  # type: ignore[attr-defined]
    assert stat.S_ISREG(os.lstat(home / ".gitconfig").st_mode)
    assert (home / ".bot-bottle" / "ca-bundle.pem").read_bytes() == b"pem"


def test_writer_creates_with_mode_and_never_setuid(tmp_path: Path) -> None:
    d = ConfinedDir(tmp_path)
    d.write("a/b/c.txt", b"1", 0o4755)
    assert stat.S_IMODE(os.stat(tmp_path / "a/b/c.txt").st_mode) == 0o755
    d.write("a/b/c.txt", b"2", 0o600)  # replaced: a new file with the new mode
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"2"
    assert stat.S_IMODE(os.stat(tmp_path / "a/b/c.txt").st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "a/b")) == ["c.txt"]  # no temporary left


def test_writer_refuses_names_that_leave_the_directory(tmp_path: Path) -> None:
    d = ConfinedDir(tmp_path / "root")
    (tmp_path / "root").mkdir()
    for bad in ("../x", "a/../../x", "/etc/passwd", "", ".", "a/.."):
        with pytest.raises(UnsafePath):
            d.write(bad, b"x", 0o644)
    assert sorted(os.listdir(tmp_path)) == ["root"]


def test_writer_refuses_to_replace_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "keep").write_text("k")
    with pytest.raises(UnsafePath, match="directory"):
        ConfinedDir(tmp_path).write("f", b"x", 0o644)
    assert (tmp_path / "f" / "keep").read_text() == "k"


def test_writer_root_must_not_be_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePath):
        ConfinedDir(tmp_path / "link").write("x", b"x", 0o644)
    assert os.listdir(tmp_path / "real") == []


def test_copy_workspace_leaves_out_fifos(tmp_path: Path) -> None:
    """A FIFO in the workspace to copy (another bottle's agent may have left one in a
    shared directory) would hang the copy; it is not a file to work on."""
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "f").write_text("x")
    os.mkfifo(ws / "sub" / "pipe")
    (ws / "link").symlink_to("/etc/passwd")
    spec = BottleSpec(slug="a-moss-0002", state_dir=tmp_path / "state", workspace_mode="copy",
                      workspace_path=str(ws))  # fmt: skip
    NamespaceBackend(RecordingExecutor(), bwrap="bwrap").prepare(spec)
    copy = tmp_path / "state" / "workspace"
    assert (copy / "sub" / "f").read_text() == "x"
    assert not (copy / "sub" / "pipe").exists()
    assert os.readlink(copy / "link") == "/etc/passwd"  # copied as a link, not followed
