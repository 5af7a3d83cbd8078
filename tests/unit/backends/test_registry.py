"""A backend name is written once (`names.BACKENDS`): the registry, the manifest's
`backend` field and the CLI's `--backend` all offer exactly those, plus `auto`."""

from __future__ import annotations

import click

from bot_bottle.backends import registry
from bot_bottle.cli.bottle_cmds import run
from bot_bottle.manifest.model import Manifest
from bot_bottle.names import BACKENDS


def test_registry_holds_every_builtin() -> None:
    registry.get(BACKENDS[0])  # loads the built-ins
    assert set(BACKENDS) <= set(registry.REGISTRY)
    for backend_id in BACKENDS:
        backend = registry.REGISTRY[backend_id](registry.ProcessExecutor())
        assert backend.id == backend_id


def test_manifest_offers_the_same_names() -> None:
    schema = Manifest.model_json_schema()
    enums = [
        prop["enum"]
        for d in schema.get("$defs", {}).values()
        for name, prop in d.get("properties", {}).items()
        if name == "backend" and "enum" in prop
    ]
    assert enums == [["auto", *BACKENDS]]


def test_cli_offers_the_same_names() -> None:
    (opt,) = [p for p in run.params if p.name == "backend"]
    assert isinstance(opt.type, click.Choice)
    assert list(opt.type.choices) == ["auto", *BACKENDS]
