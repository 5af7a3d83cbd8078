"""Commands that read or write the manifest: init, check, schema, plan, version."""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot_bottle import __version__
from bot_bottle.cli import output
from bot_bottle.cli.options import locate, manifest_option
from bot_bottle.cli.prediction import predict, prediction_dict, render_prediction, verdict_of
from bot_bottle.cli.summary import plan_dict, render_plan
from bot_bottle.cli.trust_cmd import describe_verdict
from bot_bottle.errors import ManifestError, raise_all
from bot_bottle.manifest.loader import LoadedManifest, load_manifest
from bot_bottle.manifest.model import Manifest
from bot_bottle.names import BACKENDS
from bot_bottle.plan.resolver import resolve

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
    from bot_bottle.preflight import Preflight
    from bot_bottle.state.approval import Verdict


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("-f", "--manifest", "manifest_file", metavar="FILE", default=None,
              help="Where to write the manifest (default: ./bot-bottle.yaml).")  # fmt: skip
def init(manifest_file: str | None, force: bool) -> None:
    """Write a commented starter manifest (./bot-bottle.yaml)."""
    path = Path(manifest_file or "bot-bottle.yaml")
    if path.exists() and not force:
        raise ManifestError(f"{path} already exists", fix="pass --force to overwrite it")
    text = resources.files("bot_bottle.manifest").joinpath("starter.yaml").read_text()
    path.write_text(text)
    click.echo(f"wrote {path}; next: `bot-bottle check` and `bot-bottle plan coder`")


@click.command()
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="Print the effective plans as JSON.")
def check(manifest_file: str | None, as_json: bool) -> None:
    """Validate the manifest, print each agent's effective plan and what a `run` of it
    would meet here.

    Exit code 2 naming every invalid field; 1 when the manifest is valid but a `run`
    of some agent would stop on this host (a missing token, agent CLI or backend).
    """
    loaded = load_manifest(locate(manifest_file))
    plans = resolve_all(loaded)
    verdicts = [verdict_of(p) for p in plans]
    found = [predict(p, "auto", v) for p, v in zip(plans, verdicts, strict=True)]
    if as_json:
        click.echo(json.dumps([{**_with_approval(p, v), **prediction_dict(f)}
                               for p, v, f in zip(plans, verdicts, found, strict=True)],
                              indent=2))  # fmt: skip
        _exit_if_blocked(found)
        return
    console = output.console()
    console.print(f"[green]ok[/green] {loaded.path} ({_count(len(plans), 'agent')}, "
                  f"{_count(len(loaded.manifest.bottles), 'bottle')})")  # fmt: skip
    for p, v, f in zip(plans, verdicts, found, strict=True):
        console.rule(p.agent)
        console.print(render_plan(p, f.backend_id))
        console.print(describe_verdict(v), markup=False)
        passthrough = [r.host for r in p.egress.routes if r.tls_passthrough]
        if passthrough:
            console.print(
                f"[yellow]note[/yellow]: {', '.join(passthrough)} use tls_passthrough: path "
                "rules, DLP and credential injection do not apply to them"
            )
        console.print(render_prediction(f))
    _exit_if_blocked(found)


def resolve_all(loaded: LoadedManifest) -> list[BottlePlan]:
    """Every agent's plan; every agent's problems at once; none at all is an error."""
    if not loaded.manifest.agents:
        raise ManifestError(
            f"{loaded.path} defines no agents: there is nothing to run",
            fix="add one under `agents:` naming a bottle (`bot-bottle init -f example.yaml` "
            "writes a commented example)",
        )
    plans, errors = [], []
    for name in sorted(loaded.manifest.agents):
        try:
            plans.append(resolve(loaded, name, os.environ))
        except ManifestError as e:
            errors.append(e)
    raise_all(errors, str(loaded.path))
    return plans


def _exit_if_blocked(found: list[Preflight]) -> None:
    if not all(f.ok for f in found):
        sys.exit(1)


@click.command()
def schema() -> None:
    """Print the manifest's JSON Schema (for editor autocompletion)."""
    click.echo(json.dumps(Manifest.model_json_schema(), indent=2))


@click.command()
@click.argument("agent")
@manifest_option
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto",
              show_default=True, help="Sandbox runtime, as `run --backend`.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def plan(agent: str, manifest_file: str | None, backend: str, as_json: bool) -> None:
    """Show the preflight summary a launch of AGENT will show, and every problem that
    would stop it here (exit 1); start nothing."""
    loaded = load_manifest(locate(manifest_file))
    p = resolve(loaded, agent, os.environ)
    v = verdict_of(p)
    found = predict(p, backend, v)
    if as_json:
        click.echo(json.dumps({**_with_approval(p, v), **prediction_dict(found)}, indent=2))
    else:
        console = output.console()
        console.print(render_plan(p, found.backend_id))
        console.print(describe_verdict(v), markup=False)
        console.print(render_prediction(found))
    _exit_if_blocked([found])


def _with_approval(p: BottlePlan, v: Verdict) -> dict[str, Any]:
    from bot_bottle.plan.review import render_changes

    return {**plan_dict(p), "approval": {"status": v.status, "changes": render_changes(v.changes)}}


@click.command()
def version() -> None:
    """Print bot-bottle's version."""
    click.echo(f"bot-bottle {__version__}")
