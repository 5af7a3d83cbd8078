"""A microVM bottle's `resources`: enforced by the VM itself (its vCPUs and RAM), so
only what a VM can give exactly is accepted."""

from __future__ import annotations

import math
import os

from bot_bottle.backends.spec import BottleSpec
from bot_bottle.errors import BotBottleError, ManifestError
from bot_bottle.manifest.resources import parse_memory

DEFAULT_MEMORY_MB = 1024


def memory_mb(memory: str | None) -> int:
    """The guest's RAM: the manifest's `memory` (the VM cannot use more), else 1 GiB."""
    if not memory:
        return DEFAULT_MEMORY_MB
    return parse_memory(memory) >> 20


def refusals(spec: BottleSpec) -> list[BotBottleError]:
    """A VM enforces whole vCPUs and its RAM: a fraction of a CPU, or more CPUs than the
    host has, would not be what the manifest says, so it is refused, never rounded."""
    host = os.cpu_count() or 1
    if spec.cpus is not None and spec.cpus != int(spec.cpus):
        return [ManifestError(f"{spec.cpus:g} CPUs: a microVM has whole vCPUs",
                              "resources.cpus", "give a whole number of CPUs")]  # fmt: skip
    if spec.cpus is not None and spec.cpus > host:
        return [ManifestError(f"{spec.cpus:g} is more than this host's {host} CPUs",
                              "resources.cpus", f"lower `resources.cpus` to at most {host}")]  # fmt: skip
    if spec.memory and parse_memory(spec.memory) < (128 << 20):
        return [ManifestError(f"{spec.memory}: a microVM needs at least 128 MiB",
                              "resources.memory", "give at least `128m`")]  # fmt: skip
    return []


def vcpus(cpus: float | None) -> int:
    return max(1, math.ceil(cpus)) if cpus else 1
