"""The host's secrets and other processes are not visible from a bottle."""

from __future__ import annotations

import os
import subprocess

import pytest
from ns_harness import Bottle

pytestmark = pytest.mark.integration


def test_host_ssh_key_unreadable(bottle: Bottle) -> None:
    key = bottle.host_home / ".ssh" / "id_ed25519"
    r = bottle.sh(f"cat {key}; cat ~/.ssh/id_ed25519; cat /root/.ssh/id_ed25519")
    assert "FAKE-PRIVATE-KEY" not in r.stdout
    assert r.returncode != 0


def test_host_dirs_absent(bottle: Bottle) -> None:
    paths = [str(bottle.host_home), "/root", "/etc/shadow", "/etc/ssl/private", os.getcwd()]
    r = bottle.sh(f"ls {' '.join(paths)}")
    assert r.stdout == ""
    # Absent, not merely unlisted: an empty stdout alone would also pass if ls never ran.
    for path in paths:
        assert f"cannot access '{path}': No such file or directory" in r.stderr, r.stderr


def test_other_process_environ_unreadable(bottle: Bottle) -> None:
    victim = subprocess.Popen(["sleep", "30"], env={"VICTIM_SECRET": "FAKE-ENV-SECRET"})
    try:
        r = bottle.sh(f"cat /proc/{victim.pid}/environ; cat /proc/*/environ | tr '\\0' '\\n'")
        assert "FAKE-ENV-SECRET" not in r.stdout
        # only the bottle's own processes exist in its PID namespace
        assert bottle.sh("ls /proc | grep -c '^[0-9]'").stdout.strip() in ("3", "4", "5")
    finally:
        victim.kill()
        victim.wait()


def test_ptrace_and_new_userns_denied(bottle: Bottle) -> None:
    r = bottle.sh("unshare -U true; echo rc=$?")
    assert "rc=0" not in r.stdout
    r = bottle.sh(
        'python3 -c "import ctypes;l=ctypes.CDLL(None,use_errno=True);'
        'print(l.ptrace(16, 1, 0, 0), ctypes.get_errno())"'
    )
    assert r.stdout.split() == ["-1", "1"]  # PTRACE_ATTACH -> EPERM
