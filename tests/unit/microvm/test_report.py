"""What `doctor` says about the microvm backend: one section with the registry's
verdict, each accelerator as a real boot found it, what a bottle uses, gives, needs,
and what this host lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.backends.microvm.accel import Accel, chosen
from bot_bottle.backends.microvm.report import MicrovmReport
from bot_bottle.backends.spec import Availability

READY = Availability(True, "QEMU microvm, own kernel, no NIC; TCG: no hardware acceleration")
KVM_PVM = Accel("kvm", False, "no boot marker within 8 s (QEMU's last output: no output); "
                "this host's KVM is kvm_pvm (nested, paravirtual)")  # fmt: skip
TCG = Accel("tcg", True, "booted to the guest marker in 2.04 s", 2.04)


def test_kvm_failing_falls_back_to_tcg_and_says_so() -> None:
    lines = MicrovmReport(READY, (KVM_PVM, TCG), kernel="6.1.0-57-cloud-amd64").lines()
    assert lines[0] == f"microvm: ready: {READY.detail}"
    assert "    KVM fails: no boot marker within 8 s" in "\n".join(lines)
    assert "kvm_pvm" in lines[2]
    assert (
        lines[3] == "    TCG works (no hardware acceleration): booted to the guest marker in 2.04 s"
    )
    assert lines[4].startswith("  a bottle uses: TCG: no hardware acceleration")
    text = "\n".join(lines)
    assert "in progress" not in text
    for gives in ("own kernel (Debian cloud kernel 6.1.0-57-cloud-amd64)", "no network device",
                  "virtiofs", "seccomp"):  # fmt: skip
        assert gives in text, gives
    assert "a root launcher (virtiofsd runs only as root)" in text
    assert "  missing here: hardware acceleration (KVM does not boot the guest here" in text
    assert chosen([KVM_PVM, TCG]) == TCG


def test_working_kvm_is_used_with_no_tcg_note_and_nothing_missing() -> None:
    kvm = Accel("kvm", True, "booted to the guest marker in 0.40 s", 0.4)
    lines = MicrovmReport(Availability(True, "QEMU microvm; KVM"), (kvm, TCG)).lines()
    assert "    KVM works: booted to the guest marker in 0.40 s" in lines
    assert "  a bottle uses: KVM: hardware acceleration" in lines
    assert "  missing here: nothing" in lines
    assert not any("a bottle uses: TCG" in line for line in lines)


def test_a_host_missing_pieces_names_them_and_why_nothing_was_tested() -> None:
    av = Availability(False, "cannot run a microVM here",
                      ["/usr/lib/qemu/virtiofsd (apt-get install qemu-system-common)",
                       "root: virtiofsd ... runs only as root here"])  # fmt: skip
    lines = MicrovmReport(av, (), "no guest kernel yet").lines()
    assert lines[0] == "microvm: unavailable: cannot run a microVM here"
    assert lines[1] == "  accelerators: not tested: no guest kernel yet"
    missing = next(line for line in lines if line.startswith("  missing here: "))
    assert "qemu-system-common" in missing and "root" in missing
    assert not any("a bottle uses" in line for line in lines)


def test_no_accelerator_booting_says_no_bottle_can_start() -> None:
    tcg = Accel("tcg", False, "QEMU exited 1 before the marker: no such file")
    lines = MicrovmReport(READY, (KVM_PVM, tcg)).lines()
    assert "    TCG fails: QEMU exited 1 before the marker: no such file" in lines
    assert (
        "  a bottle uses: nothing: no accelerator boots the guest, so no bottle can start" in lines
    )


def test_a_verdict_where_nothing_boots_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed TCG boot (a boot file pruned for a moment, say) must not refuse every
    later launch: only a verdict with a working accelerator is cached."""
    from bot_bottle.backends.microvm import accel

    verdicts = {"kvm": accel.Accel("kvm", False, "no"), "tcg": accel.Accel("tcg", False, "gone")}
    monkeypatch.setattr(accel, "probe_one", lambda name, *a, **k: verdicts[name])
    monkeypatch.setattr(accel, "_key", lambda files: "k")
    accel.probe(None, None, tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "microvm-accel.json").exists()
    verdicts["tcg"] = accel.Accel("tcg", True, "booted", 2.0)
    accel.probe(None, None, tmp_path)  # type: ignore[arg-type]
    assert (tmp_path / "microvm-accel.json").exists()
