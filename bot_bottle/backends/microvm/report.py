"""What `doctor` says about the microVM backend (in progress): whether QEMU and the
guest boot files are here, and which accelerator boots a guest (see `accel`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from bot_bottle.backends.microvm.accel import Accel, probe
from bot_bottle.backends.microvm.qemu import QEMU
from bot_bottle.errors import BotBottleError
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.images.guest.store import cache_dir, cached_boot


@dataclass(frozen=True)
class MicrovmReport:
    """`accels` is empty when the probe could not run; `missing` then says why."""

    accels: tuple[Accel, ...]
    missing: str = ""

    def lines(self) -> list[str]:
        if self.missing:
            return [f"microvm (in progress): not probed: {self.missing}"]
        out = []
        for a in self.accels:
            verdict = "works" if a.works else "fails"
            note = " (no hardware acceleration)" if a.name == "tcg" and a.works else ""
            out.append(f"microvm (in progress): {a.name.upper()} {verdict}{note}: {a.detail}")
        return out


def report(executor: Executor | None = None) -> MicrovmReport:
    """Probe (or read the cached probe); never downloads or builds the kernel."""
    executor = executor or ProcessExecutor()
    if shutil.which(QEMU) is None:
        return MicrovmReport((), f"{QEMU} is not installed (apt-get install qemu-system-x86)")
    try:
        files = cached_boot(executor)
    except BotBottleError as e:
        return MicrovmReport((), e.message)
    if files is None:
        return MicrovmReport((), "no guest kernel yet (`bot-bottle images guest` fetches it)")
    try:
        return MicrovmReport(tuple(probe(files, executor, cache_dir())))
    except Exception as e:  # a probe must never crash doctor (as `probe_all`)
        return MicrovmReport((), f"the probe failed: {type(e).__name__}: {e}")
