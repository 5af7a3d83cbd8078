"""What a microVM bottle's launch is refused for before anything starts: resources a VM
cannot enforce as written (a fraction of a CPU, more CPUs than the host has)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot_bottle.backends.microvm.limits import refusals as _resource_refusals
from bot_bottle.backends.spec import BottleSpec


def _spec(cpus: float | None = None, memory: str | None = None) -> BottleSpec:
    return BottleSpec(slug="s", state_dir=Path(), workspace_mode="none", workspace_path="",
                      cpus=cpus, memory=memory)  # fmt: skip


@pytest.mark.parametrize(("cpus", "memory", "field"), [
    (0.5, None, "resources.cpus"),
    (float((os.cpu_count() or 1) + 1), None, "resources.cpus"),
    (None, "64m", "resources.memory"),
])  # fmt: skip
def test_limits_a_vm_cannot_enforce_are_refused(cpus: float | None, memory: str | None,
                                                field: str) -> None:  # fmt: skip
    (refusal,) = _resource_refusals(_spec(cpus, memory))
    assert getattr(refusal, "path", "") == field


def test_whole_cpus_and_enough_memory_pass() -> None:
    assert _resource_refusals(_spec(1.0, "512m")) == []
    assert _resource_refusals(_spec()) == []
