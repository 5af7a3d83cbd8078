"""Which process a recorded pid named, so that a signal reaches that process or nobody.

A pid alone names whoever holds it now. After a crash or a reboot the pid a bottle
recorded may belong to an unrelated process of the user, which `stop` or `gc` would
then signal. So with each pid bot-bottle records an identity, `BOOT_ID:TICKS`: the
boot it ran in (/proc/sys/kernel/random/boot_id) and when it started (field 22 of
/proc/PID/stat, clock ticks since boot). A pid whose holder started at another moment
or in another boot is another process: for bot-bottle the recorded one is gone.

A signal goes through a pidfd taken before the identity is compared, so it reaches
the process that was compared even if the pid changes hands meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@functools.cache
def boot_id() -> str:
    """This boot's id (no process outlives a boot, so it is read once)."""
    return BOOT_ID.read_text().strip()


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; the name before it may hold anything."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return raw.rsplit(")", 1)[1].split()


def identity(pid: int) -> str | None:
    """The identity of the process holding `pid` now; None when there is none."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return f"{boot_id()}:{fields[19]}"


def running(pid: int, recorded: str | None) -> bool:
    """Whether the process recorded as `pid` with identity `recorded` still runs (a
    zombie does not). Without a recorded identity (state written by an older
    bot-bottle) any live process will do: that errs toward leaving a bottle alone."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return False
    return recorded is None or identity(pid) == recorded


@dataclass(frozen=True)
class Held:
    """A process verified to be the recorded one, held by a pidfd."""

    pid: int
    pidfd: int

    def exited(self) -> bool:
        return bool(select.select([self.pidfd], [], [], 0)[0])

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send `sig` to the process, or to the process group it leads when `group`.
        The group is signalled only while its leader has not exited: the pidfd keeps
        the process, not its number, and a reaped leader's number may be reused."""
        if group and not self.exited():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            signal.pidfd_send_signal(self.pidfd, sig)

    def close(self) -> None:
        os.close(self.pidfd)


def hold(pid: int, recorded: str | None) -> Held | None:
    """`pid` held by a pidfd if it is still the process recorded with `recorded`, else
    None (gone, or another process). Without a recorded identity (older state) only a
    bot-bottle process of this user qualifies (`is_bot_bottle`)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone, or no pid at all (0, -1: never a group to signal)
        return None
    # The pidfd was taken first: if the identity still matches now, it is that process.
    ok = identity(pid) == recorded if recorded is not None else is_bot_bottle(pid)
    if not ok:
        os.close(pidfd)
        return None
    return Held(pid, pidfd)


def wait_gone(pid: int, recorded: str | None, poll: float = 1.0) -> None:
    """Return once the process recorded as `pid` with identity `recorded` is gone (at
    once if it already is): woken by its pidfd, or, where there are no pidfds (an old
    kernel, a filter refusing them), by looking every `poll` seconds. Unlike `hold`,
    "cannot take a pidfd" is never read as "gone"."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:
        while running(pid, recorded):
            time.sleep(poll)
        return
    try:
        # Taken before the identity is compared: if it matches now, the pidfd is the
        # recorded process's, readable once it exits.
        if recorded is None or identity(pid) == recorded:
            select.select([pidfd], [], [])
    finally:
        os.close(pidfd)


def signal_recorded(pid: int, recorded: str | None, sig: int, *, group: bool = False) -> bool:
    """Send `sig` to `pid` (its group when `group`) if it is still the recorded
    process; whether it was."""
    held = hold(pid, recorded)
    if held is None:
        return False
    try:
        held.signal(sig, group=group)
    finally:
        held.close()
    return True


def is_bot_bottle(pid: int) -> bool:
    """Whether `pid` is a process of this user running bot-bottle's code: `python -m
    bot_bottle...` (how every sidecar starts) or the `bot-bottle` command."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.geteuid():
            return False
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    for i, arg in enumerate(argv[:-1]):
        if arg == b"-m" and argv[i + 1].split(b".")[0] == b"bot_bottle":
            return True
    return any(os.path.basename(a) == b"bot-bottle" for a in argv[:2])
