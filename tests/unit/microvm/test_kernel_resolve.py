"""Which kernel package the guest uses, from apt's local index, and the cache that
spares a download: the seam records the commands, none runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot_bottle.errors import BackendUnavailable
from bot_bottle.executor import Cmd, CommandResult
from bot_bottle.images.guest import kernel

META = """Package: linux-image-cloud-amd64
Version: 6.1.192-3
Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)
SHA256: fcd79a9aee28374b8d1f1b1c0bf3ab0d920ed1a3eca887c9e6cc57bb7bee6e5c
"""
IMAGE = """Package: linux-image-6.1.0-57-cloud-amd64
Version: 6.1.192-3
Depends: kmod, linux-base (>= 4.3~)
SHA256: 4fdd0172a8c3f41a97e92465b2ac1867e1c10d82d7aeed3d26ee7a5d14df1754
"""


@dataclass
class AptIndex:
    shows: dict[str, str]
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        self.calls.append(cmd.argv)
        if cmd.argv[:2] == ("apt-cache", "show"):
            text = self.shows.get(cmd.argv[-1], "")
            return CommandResult(0 if text else 100, text, "" if text else "E: No packages found")
        raise AssertionError(f"unexpected command {cmd.argv}")


def test_resolve_follows_the_meta_package() -> None:
    apt = AptIndex({kernel.META_PACKAGE: META, "linux-image-6.1.0-57-cloud-amd64": IMAGE})
    pkg = kernel.resolve(apt)  # type: ignore[arg-type]
    assert pkg == kernel.KernelPackage("linux-image-6.1.0-57-cloud-amd64", "6.1.192-3",
                                       IMAGE.split("SHA256: ")[1].strip())  # fmt: skip
    assert pkg.key.startswith("4fdd0172a8c3f41a-")  # and the modules staged from it


def test_unknown_package_says_update_apt() -> None:
    with pytest.raises(BackendUnavailable, match="apt knows no package"):
        kernel.resolve(AptIndex({}))  # type: ignore[arg-type]


def test_a_cached_kernel_is_not_downloaded_again(tmp_path: Path) -> None:
    apt = AptIndex({kernel.META_PACKAGE: META, "linux-image-6.1.0-57-cloud-amd64": IMAGE})
    cached = tmp_path / f"kernel-{kernel.resolve(apt).key}"
    cached.mkdir()
    (cached / "release").write_text("6.1.0-57-cloud-amd64\n")
    k, built = kernel.ensure(tmp_path, apt)  # type: ignore[arg-type]
    assert not built and k.release == "6.1.0-57-cloud-amd64"
    assert all(c[0] == "apt-cache" for c in apt.calls)  # no apt-get download


def test_the_package_answer_is_kept_until_apts_index_changes(tmp_path: Path) -> None:
    apt = AptIndex({kernel.META_PACKAGE: META, "linux-image-6.1.0-57-cloud-amd64": IMAGE})
    first = kernel.resolve(apt, cache=tmp_path)  # type: ignore[arg-type]
    asked = len(apt.calls)
    assert kernel.resolve(apt, cache=tmp_path) == first  # type: ignore[arg-type]
    assert len(apt.calls) == asked
    data = (tmp_path / "kernel-package.json").read_text()
    (tmp_path / "kernel-package.json").write_text(data.replace("\\u0000", "\\u0000x"))
    assert kernel.resolve(apt, cache=tmp_path) == first  # type: ignore[arg-type]
    assert len(apt.calls) > asked  # another index: asked again
