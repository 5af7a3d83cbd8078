"""What `doctor` says about the microvm backend, in one section: the registry's verdict
(`MicrovmBackend.probe`), each accelerator as a real boot found it (`accel`), the one a
bottle would use, what the backend gives, what it needs, and what this host lacks."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from bot_bottle.backends.microvm.accel import Accel, chosen, probe
from bot_bottle.backends.microvm.qemu import QEMU
from bot_bottle.backends.spec import Availability
from bot_bottle.errors import BotBottleError
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.images.guest.store import cache_dir, cached_boot

GIVES = ("the agent under its own kernel ({kernel}); no network device: egress and the git "
         "gate only through a virtio serial port to the host's sidecars; HOME and the "
         "workspace shared with virtiofs; QEMU confined by its seccomp sandbox, with only "
         "the devices a bottle needs")  # fmt: skip
NEEDS = ("QEMU (qemu-system-x86), virtiofsd (qemu-system-common) and setpriv (util-linux); "
         "a root launcher (virtiofsd runs only as root); KVM for speed (else TCG, software "
         "emulation); the first run fetches the Debian cloud kernel (apt) and builds the "
         "guest's root from the Docker agent image (needs the Docker engine once)")  # fmt: skip
# What a microvm bottle cannot have yet, whatever the host (`readiness` refuses it).
NOT_YET = ("a custom agent Dockerfile (`agent_provider.dockerfile`: use backend docker)",)


@dataclass(frozen=True)
class MicrovmReport:
    """`availability` is the registry's probe of the backend; `accels` is empty when the
    accelerators could not be tested, and `not_probed` then says why; `kernel` is the
    guest kernel's release once it is fetched."""

    availability: Availability
    accels: tuple[Accel, ...] = ()
    not_probed: str = ""
    kernel: str = ""

    def lines(self) -> list[str]:
        av = self.availability
        out = [f"microvm: {'ready' if av.ok else 'unavailable'}: {av.detail}"]
        if self.not_probed:
            out.append(f"  accelerators: not tested: {self.not_probed}")
        else:
            out.append("  accelerators, each tested by booting the guest:")
            for a in self.accels:
                verdict = "works" if a.works else "fails"
                note = " (no hardware acceleration)" if a.name == "tcg" and a.works else ""
                out.append(f"    {a.name.upper()} {verdict}{note}: {a.detail}")
            out.append(f"  a bottle uses: {uses(chosen(list(self.accels)))}")
        out.append("  gives: " + GIVES.format(kernel=self._kernel_text()))
        out.append("  needs: " + NEEDS)
        out.append("  missing here: " + ("; ".join(self.missing()) or "nothing"))
        out.append("  not yet on this backend: " + "; ".join(NOT_YET))
        return out

    def missing(self) -> list[str]:
        """What this host lacks: the backend's own list, and hardware acceleration when
        KVM was tested and does not boot the guest."""
        out = list(self.availability.missing)
        kvm = next((a for a in self.accels if a.name == "kvm"), None)
        if kvm is not None and not kvm.works:
            out.append("hardware acceleration (KVM does not boot the guest here; see above)")
        return out

    def _kernel_text(self) -> str:
        return f"Debian cloud kernel {self.kernel}" if self.kernel else "Debian's cloud kernel"


def uses(accel: Accel | None) -> str:
    if accel is None:
        return "nothing: no accelerator boots the guest, so no bottle can start"
    if accel.name == "tcg":
        return ("TCG: no hardware acceleration (software emulation: the agent runs several "
                "times slower than natively)")  # fmt: skip
    return f"{accel.name.upper()}: hardware acceleration"


def report(availability: Availability, executor: Executor | None = None) -> MicrovmReport:
    """Test the accelerators (or read their cached verdicts) for the backend the
    registry found `availability` for; never downloads or builds the kernel."""
    executor = executor or ProcessExecutor()
    if shutil.which(QEMU) is None:
        return MicrovmReport(availability, (), f"{QEMU} is not installed")
    try:
        files = cached_boot(executor)
    except BotBottleError as e:
        return MicrovmReport(availability, (), e.message)
    if files is None:
        return MicrovmReport(availability, (), "no guest kernel yet (the first run fetches "
                             "it; `bot-bottle images guest` does it now)")  # fmt: skip
    try:
        accels = tuple(probe(files, executor, cache_dir()))
    except Exception as e:  # a probe must never crash doctor (as `probe_all`)
        return MicrovmReport(availability, (), f"the probe failed: {type(e).__name__}: {e}",
                             files.kernel.release)  # fmt: skip
    return MicrovmReport(availability, accels, "", files.kernel.release)
