"""`resources` values: how a CPU count and a memory size are read and which are sane.

Checked when the manifest is read (`check` refuses what `run` could not start), so a
backend is only ever handed a finite CPU count and a memory size in bytes it can pass
to the kernel or the engine as an integer.
"""

from __future__ import annotations

import math
import re

# The engine's and the kernel's floors: a CFS quota below 1% of a period is refused
# (Docker: "Range of CPUs is from 0.01 ..."), and below 6 MiB Docker starts nothing.
CPUS_MIN = 0.01
CPUS_MAX = 1024.0
MEMORY_MIN = 6 * 1024**2
MEMORY_MAX = 1024**5  # 1 PiB: far above any host, far below an int64 overflow

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)
MEMORY_EXAMPLES = "like 512m, 2g, 1.5GiB or a number of bytes"


def check_cpus(value: float) -> float:
    """`value` when it is a CPU count a backend can enforce; ValueError otherwise."""
    if not math.isfinite(value):
        raise ValueError(f"expected a number of CPUs like 1 or 0.5; found {value!r}")
    if not CPUS_MIN <= value <= CPUS_MAX:
        raise ValueError(f"expected between {CPUS_MIN} and {CPUS_MAX:g} CPUs; found {value:g}")
    return value


def parse_memory(text: str) -> int:
    """`512m`, `2G`, `1.5GiB`, `268435456` as bytes (binary units, as Docker reads
    them); ValueError when it is not a size."""
    m = _MEMORY.fullmatch(text)
    if not m or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
        raise ValueError(f"expected a memory size {MEMORY_EXAMPLES}; found {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def check_memory(text: str) -> str:
    """`text` when it is a memory size a backend can enforce; ValueError otherwise."""
    size = parse_memory(text)
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        raise ValueError(
            f"expected at least 6m (nothing starts below it) and at most 1024t; found {text!r}"
        )
    return text
