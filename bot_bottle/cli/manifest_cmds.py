"""Commands that read or write the manifest: init, check, schema, plan, version."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bot_bottle import __version__
from bot_bottle.cli.options import manifest_option
from bot_bottle.cli.summary import plan_dict, render_plan
from bot_bottle.cli.trust_cmd import describe_verdict
from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import load_manifest
from bot_bottle.manifest.location import manifest_path
from bot_bottle.manifest.model import Manifest
from bot_bottle.plan.resolver import resolve

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
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
    """Validate the manifest and print each agent's effective plan.

    Exit code 2 with one message naming the field when the manifest is invalid.
    """
    loaded = load_manifest(manifest_path(manifest_file))
    plans = [resolve(loaded, name, os.environ) for name in sorted(loaded.manifest.agents)]
    verdicts = [_verdict(p) for p in plans]
    if as_json:
        click.echo(json.dumps([_with_approval(p, v) for p, v in zip(plans, verdicts, strict=True)],
                              indent=2))  # fmt: skip
        return
    console = Console()
    console.print(f"[green]ok[/green] {loaded.path} ({_count(len(plans), 'agent')}, "
                  f"{_count(len(loaded.manifest.bottles), 'bottle')})")  # fmt: skip
    for p, v in zip(plans, verdicts, strict=True):
        console.rule(p.agent)
        console.print(render_plan(p))
        console.print(describe_verdict(v), markup=False)
        passthrough = [r.host for r in p.egress.routes if r.tls_passthrough]
        if passthrough:
            console.print(
                f"[yellow]note[/yellow]: {', '.join(passthrough)} use tls_passthrough: path "
                "rules, DLP and credential injection do not apply to them"
            )


@click.command()
def schema() -> None:
    """Print the manifest's JSON Schema (for editor autocompletion)."""
    click.echo(json.dumps(Manifest.model_json_schema(), indent=2))


@click.command()
@click.argument("agent")
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def plan(agent: str, manifest_file: str | None, as_json: bool) -> None:
    """Show the preflight summary a launch of AGENT will show; start nothing."""
    loaded = load_manifest(manifest_path(manifest_file))
    p = resolve(loaded, agent, os.environ)
    v = _verdict(p)
    if as_json:
        click.echo(json.dumps(_with_approval(p, v), indent=2))
    else:
        Console().print(render_plan(p))
        Console().print(describe_verdict(v), markup=False)


def _verdict(p: BottlePlan) -> Verdict:
    from bot_bottle.state.approval import ApprovalStore, evaluate
    from bot_bottle.state.store import StateStore

    return evaluate(ApprovalStore(StateStore().root), p)


def _with_approval(p: BottlePlan, v: Verdict) -> dict[str, Any]:
    from bot_bottle.plan.review import render_changes

    return {**plan_dict(p), "approval": {"status": v.status, "changes": render_changes(v.changes)}}


@click.command()
def version() -> None:
    """Print bot-bottle's version."""
    click.echo(f"bot-bottle {__version__}")
