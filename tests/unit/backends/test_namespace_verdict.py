"""The namespace probe's kept verdict: a launch skips the bwrap probe only after a
success under the same key (boot, bwrap, sysctls, the launcher's namespaces) less than
the TTL ago; a failure is never kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes.executor import RecordingExecutor

from bot_bottle.backends.namespace import backend as ns_backend
from bot_bottle.backends.namespace import verdict
from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.executor import CommandResult


@pytest.fixture(autouse=True)
def _host_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks before the probe (bwrap, python3) pass whatever this host has."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/bwrap")
    monkeypatch.setattr(ns_backend.os.path, "exists", lambda p: True)
    monkeypatch.setattr(ns_backend, "launcher_is_root", lambda: False)


def _probes(rec: RecordingExecutor) -> int:
    return sum("/usr/bin/true" in c.argv for c in rec.calls)


def test_a_success_is_kept_and_spares_the_next_launch_its_probe(tmp_path: Path) -> None:
    kept = tmp_path / "cache" / "namespace-probe.json"
    first = RecordingExecutor()
    assert NamespaceBackend(first, bwrap="/usr/bin/bwrap", verdicts=kept).probe().ok
    assert _probes(first) == 1
    assert oct(kept.stat().st_mode & 0o777) == oct(0o600)
    second = RecordingExecutor()
    assert NamespaceBackend(second, bwrap="/usr/bin/bwrap", verdicts=kept).probe().ok
    assert _probes(second) == 0


def test_a_failure_is_never_kept(tmp_path: Path) -> None:
    kept = tmp_path / "namespace-probe.json"
    rec = RecordingExecutor(results={"/usr/bin/bwrap": CommandResult(1, "", "bwrap: no userns")})
    av = NamespaceBackend(rec, bwrap="/usr/bin/bwrap", verdicts=kept).probe()
    assert not av.ok and "no userns" in av.detail
    assert not kept.exists()


def test_a_changed_key_or_an_old_verdict_probes_again(tmp_path: Path) -> None:
    kept = tmp_path / "namespace-probe.json"
    verdict.remember(kept, "key-a")
    assert verdict.known_good(kept, "key-a")
    assert not verdict.known_good(kept, "key-b")
    later = verdict.time.time() + verdict.VERDICT_TTL + 1
    assert not verdict.known_good(kept, "key-a", now=later)
    kept.write_text("{not json")
    assert not verdict.known_good(kept, "key-a")


def test_the_key_follows_the_sysctls_and_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    base = verdict.key("/usr/bin/bwrap", ["bwrap", "--", "/usr/bin/true"])
    assert base == verdict.key("/usr/bin/bwrap", ["bwrap", "--", "/usr/bin/true"])
    assert base != verdict.key("/usr/bin/bwrap", ["bwrap", "--unshare-pid", "/usr/bin/true"])
    real_read = Path.read_text

    def userns_off(self: Path, *a: object, **k: object) -> str:
        if str(self) == "/proc/sys/user/max_user_namespaces":
            return "0\n"
        return real_read(self)

    monkeypatch.setattr(Path, "read_text", userns_off)
    assert base != verdict.key("/usr/bin/bwrap", ["bwrap", "--", "/usr/bin/true"])
