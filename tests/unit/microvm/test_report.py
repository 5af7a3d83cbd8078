"""What `doctor` prints for the microVM backend in progress."""

from __future__ import annotations

from bot_bottle.backends.microvm.accel import Accel, chosen
from bot_bottle.backends.microvm.report import MicrovmReport


def test_lines_say_kvm_was_tested_and_tcg_has_no_acceleration() -> None:
    kvm = Accel("kvm", False, "no boot marker within 8 s (QEMU's last output: no output)")
    tcg = Accel("tcg", True, "booted to the guest marker in 2.04 s", 2.04)
    lines = MicrovmReport((kvm, tcg)).lines()
    assert lines[0].startswith("microvm (in progress): KVM fails: no boot marker")
    assert "TCG works (no hardware acceleration)" in lines[1]
    assert chosen([kvm, tcg]) == tcg
    assert chosen([kvm]) is None


def test_kvm_that_works_carries_no_tcg_note() -> None:
    (line,) = MicrovmReport((Accel("kvm", True, "booted in 0.4 s", 0.4),)).lines()
    assert line == "microvm (in progress): KVM works: booted in 0.4 s"


def test_not_probed_says_why() -> None:
    (line,) = MicrovmReport((), "no guest kernel yet").lines()
    assert line == "microvm (in progress): not probed: no guest kernel yet"
