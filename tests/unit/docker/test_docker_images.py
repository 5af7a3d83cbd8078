"""Image plumbing without an engine: the host's apt mirror, the bootstrap argv, the
content digest, file archives, gc's decision."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bot_bottle.agents import PACKAGES
from bot_bottle.backends.docker.gc import garbage_reason
from bot_bottle.backends.docker.target import archive, resolve
from bot_bottle.errors import BackendUnavailable
from bot_bottle.images import bootstrap, build
from bot_bottle.state.store import StateStore

DEB822 = """\
Types: deb
URIs: http://mirror.corp.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.corp.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
"""


def apt_root(tmp_path: Path, deb822: str = "", one_line: str = "") -> Path:
    d = tmp_path / "etc/apt/sources.list.d"
    d.mkdir(parents=True)
    if deb822:
        (d / "debian.sources").write_text(deb822)
    if one_line:
        (tmp_path / "etc/apt/sources.list").write_text(one_line)
    (d / "nodesource.sources.disabled").write_text("Types: deb\nURIs: https://x\nSuites: y\n")
    return tmp_path


def test_mirror_comes_from_the_hosts_apt_config(tmp_path: Path) -> None:
    root = apt_root(tmp_path, deb822=DEB822)
    p = bootstrap.plan(Path("/r"), apt_root=root)
    assert p.mirror == "http://mirror.corp.example/debian"
    assert p.debootstrap.argv == ("debootstrap", "--variant=minbase", "bookworm", "/r",
                                  "http://mirror.corp.example/debian")  # fmt: skip
    assert p.sources_list.splitlines() == [
        "deb http://mirror.corp.example/debian bookworm main contrib",
        "deb http://mirror.corp.example/debian bookworm-updates main contrib",
        "deb http://mirror.corp.example/debian-security bookworm-security main",
    ]


def test_one_line_sources_and_https_mirror(tmp_path: Path) -> None:
    root = apt_root(
        tmp_path, one_line="# c\ndeb [arch=amd64] https://m.example/debian bookworm main\n"
    )
    p = bootstrap.plan(Path("/r"), apt_root=root)
    assert p.https and "--include=ca-certificates" in p.debootstrap.argv
    assert p.debootstrap.env is not None and "PATH" in p.debootstrap.env


def test_no_bookworm_source_is_a_clear_error(tmp_path: Path) -> None:
    root = apt_root(tmp_path, one_line="deb http://m.example/ubuntu jammy main\n")
    with pytest.raises(BackendUnavailable, match="no apt source for Debian 'bookworm'"):
        bootstrap.plan(Path("/r"), apt_root=root)


def test_digest_covers_context_and_ca(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    spec = build.ImageSpec("t", ctx)
    a = build.digest(spec, b"CA1")
    assert a == build.digest(spec, b"CA1") and len(a) == 16
    assert build.digest(spec, b"CA2") != a
    (ctx / "Dockerfile").write_text("FROM debian:bookworm-slim\nRUN true\n")
    assert build.digest(spec, b"CA1") != a
    staged = build.ImageSpec("t", ctx, target="x")
    assert build.digest(staged, b"CA1") != build.digest(spec, b"CA1")
    assert build.tag_for(spec, b"CA1").startswith("bot-bottle/t:")


def test_bundled_dockerfiles_start_from_the_bootstrapped_base() -> None:
    for spec in build.BUNDLED.values():
        text = (spec.context / "Dockerfile").read_text()
        assert "FROM debian:bookworm-slim" in text
        assert "USER root" not in text and "\nUSER " in text  # images end non-root
        if spec.target:
            assert f" AS {spec.target}\n" in text, spec.name


def test_agent_cli_images_pin_the_cli_they_carry() -> None:
    for cli in ("claude", "codex"):
        args = build.BUNDLED[f"agent-{cli}"].buildargs
        assert args["NPM_PACKAGE"] == f"{PACKAGES[cli]}@{build.AGENT_CLI_VERSIONS[cli]}"


def test_only_images_a_bottle_runs_are_built() -> None:
    # The sidecars run on the host; an image nothing runs would show as `missing`.
    assert sorted(build.BUNDLED) == ["agent-claude", "agent-codex", "agent-general"]


def test_archive_owns_files_and_parents_to_the_agent() -> None:
    data = archive([(".bot-bottle/ca.pem", b"PEM", 0o600), (".bot-bottle/x", b"", 0o644)])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == [".bot-bottle", ".bot-bottle/ca.pem", ".bot-bottle/x"]
    assert all((m.uid, m.gid) == (1000, 1000) for m in members.values())
    assert members[".bot-bottle/ca.pem"].mode == 0o600 and members[".bot-bottle"].isdir()


def test_resolve_bottle_paths() -> None:
    assert resolve("~/.gitconfig") == "/home/agent/.gitconfig"
    assert resolve("/workspace/a/../b") == "/workspace/b"
    with pytest.raises(ValueError):
        resolve("relative/path")


def test_gc_keeps_live_and_kept_bottles(tmp_path: Path) -> None:
    import os

    store = StateStore(tmp_path)
    meta = store.create(agent="a", bottle="b", backend="docker", manifest_path="m",
                        manifest_digest="d")  # fmt: skip
    live = store.update(meta.slug, status="running", pids={"launcher": os.getpid()})
    assert garbage_reason(store, live) is None
    kept = store.update(meta.slug, status="stopped", pids={})
    assert garbage_reason(store, kept) is None
    dead = store.update(meta.slug, status="running", pids={"launcher": 2**22 + 7})
    assert garbage_reason(store, dead) == f"status running, launcher {2**22 + 7} is gone"


def test_build_context_copy_follows_no_link_and_opens_no_fifo(tmp_path: Path) -> None:
    """A custom context may sit in the agent's workspace: a planted link must not pull a
    host file into the image, and a planted FIFO must not hang the launcher."""
    import os

    from bot_bottle.images.build import copy_context

    host_secret = tmp_path / "host-secret"
    host_secret.write_text("HOST-ONLY\n")
    src = tmp_path / "ctx"
    (src / "sub").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    (src / "sub" / "key").symlink_to(host_secret)
    (src / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(src / "pipe")
    dst = tmp_path / "copy"
    copy_context(src, dst)
    assert (dst / "Dockerfile").read_text() == "FROM scratch\n"
    assert (dst / "sub" / "key").is_symlink() and (dst / "linked-dir").is_symlink()
    assert not (dst / "pipe").exists()
    copied = [p.read_bytes() for p in dst.rglob("*") if p.is_file() and not p.is_symlink()]
    assert b"HOST-ONLY\n" not in copied
