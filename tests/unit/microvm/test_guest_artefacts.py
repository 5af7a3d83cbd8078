"""The pure parts of the guest artefacts: the cpio writer the initramfs is made with,
and the kernel module closure read from `.modinfo`."""

from __future__ import annotations

import stat

import pytest

from bot_bottle.errors import BackendUnavailable
from bot_bottle.images.guest import cpio
from bot_bottle.images.guest.kernel import depends_of, modules_for


def _members(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A minimal newc reader, independent of the writer's code."""
    out, pos = [], 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name_end = pos + 110 + namesize
        name = data[pos + 110 : name_end - 1].decode()
        body = name_end + (-name_end % 4)
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, data[body : body + size], rdev))
        pos = body + size + (-(body + size) % 4)


def test_cpio_round_trips_files_dirs_and_the_console_node() -> None:
    entries = [cpio.directory("dev"), cpio.char_device("dev/console", 5, 1),
               cpio.file("init", b"#!/bin/sh\necho hi\n", 0o755), cpio.file("odd", b"abc")]  # fmt: skip
    got = _members(cpio.archive(entries))
    assert [g[0] for g in got] == ["dev", "dev/console", "init", "odd"]
    assert stat.S_ISDIR(got[0][1])
    assert stat.S_ISCHR(got[1][1]) and got[1][3] == (5, 1)
    assert got[2][2] == b"#!/bin/sh\necho hi\n" and got[2][1] & 0o777 == 0o755
    assert got[3][2] == b"abc"


def test_cpio_is_deterministic() -> None:
    entries = [cpio.file("a", b"1"), cpio.file("b", b"22")]
    assert cpio.archive(entries) == cpio.archive(list(entries))


def test_depends_read_from_modinfo() -> None:
    ko = b"\x7fELF...\0license=GPL\0depends=virtio,virtio_ring\0vermagic=6.1\0"
    assert depends_of(ko) == ["virtio", "virtio_ring"]
    assert depends_of(b"\0depends=\0") == []


def test_module_closure_puts_dependencies_first() -> None:
    deps = {"virtio_blk": ["virtio", "virtio_ring"], "virtio": ["virtio_ring"],
            "virtio_ring": [], "erofs": ["libcrc32c"], "libcrc32c": []}  # fmt: skip
    order = modules_for(("virtio_blk", "erofs"), deps)
    assert set(order) == set(deps)
    for mod, needs in deps.items():
        assert all(order.index(n) < order.index(mod) for n in needs)


def test_missing_module_and_cycles_are_errors() -> None:
    with pytest.raises(BackendUnavailable, match="no module"):
        modules_for(("absent",), {})
    with pytest.raises(BackendUnavailable, match="cycle"):
        modules_for(("a",), {"a": ["b"], "b": ["a"]})
