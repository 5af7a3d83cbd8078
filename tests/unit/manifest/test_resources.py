"""`resources` is refused at `check` unless a backend can enforce it: a finite CPU
count in the engine's range, a memory size with a unit the backends read alike."""

from __future__ import annotations

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.manifest.resources import parse_memory

B = "bottles: {dev: {resources: %s}}\nagents: {c: {bottle: dev}}"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1e400", "expected a number of CPUs"),  # a string to YAML, inf to a float
        ("1.0e+400", "expected a number of CPUs"),  # inf to YAML already
        (".nan", "expected a number of CPUs"),
        ("-1", "between 0.01 and 1024 CPUs"),
        ("0", "between 0.01 and 1024 CPUs"),
        ("0.001", "between 0.01 and 1024 CPUs"),
        ("4096", "between 0.01 and 1024 CPUs"),
        ("true", "expected a number of CPUs"),
        ("lots", "valid number"),
    ],
)
def test_cpus_out_of_range_is_refused_with_the_field(value: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(B % f"{{cpus: {value}}}")
    assert "bottles.dev.resources.cpus" in str(e.value) and fragment in str(e.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "at least 6m"),
        ("0m", "at least 6m"),
        ("1k", "at least 6m"),
        ("2048t", "at most 1024t"),
        ("-5m", "expected a memory size"),
        ("lots", "expected a memory size"),
        ("5x", "expected a memory size"),
        ("iB", "expected a memory size"),
        ("12iB", "expected a memory size"),
        ("[1]", "expected a memory size"),
        ("true", "expected a memory size"),
    ],
)
def test_memory_out_of_range_is_refused_with_the_field(value: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(B % f"{{memory: {value}}}")
    assert "bottles.dev.resources.memory" in str(e.value) and fragment in str(e.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 64 * 1024**2),
        ("64M", 64 * 1024**2),
        ("64MB", 64 * 1024**2),
        ("64MiB", 64 * 1024**2),
        ("1.5g", 3 * 1024**3 // 2),
        ("2G", 2 * 1024**3),
        ("1t", 1024**4),
        ("7000000", 7_000_000),
        ("7000000b", 7_000_000),
    ],
)
def test_memory_suffixes(text: str, size: int) -> None:
    assert parse_memory(text) == size
    m = parse_manifest(B % f"{{memory: {text}}}")
    assert m.bottles["dev"].resources.memory == text


def test_memory_as_a_yaml_number_is_bytes() -> None:
    m = parse_manifest(B % "{memory: 268435456, cpus: 0.5}")
    r = m.bottles["dev"].resources
    assert r.memory == "268435456" and r.cpus == 0.5
