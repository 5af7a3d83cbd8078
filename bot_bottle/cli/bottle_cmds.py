"""`run`, `resume`, `ls`, `info`, `stop`, `rm`, `agents`: bottles' lifecycle commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot_bottle.cli.options import SLUG, manifest_option
from bot_bottle.errors import BotBottleError
from bot_bottle.names import BACKENDS

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
    from bot_bottle.state.approval import ApprovalStore, Verdict
    from bot_bottle.state.store import BottleMetadata, StateStore


def _store() -> StateStore:
    from bot_bottle.state.store import StateStore

    return StateStore()


def _confirm_factory(yes: bool, shown: BottlePlan, approvals: ApprovalStore, verdict: Verdict):  # type: ignore[no-untyped-def]
    """Show the summary of `shown` (the plan as resolved, before the approval pinned
    file contents into it), then the approval verdict; ask, or not with -y."""

    def confirm(plan, backend) -> bool:  # type: ignore[no-untyped-def]
        from rich.console import Console

        from bot_bottle.cli.trust_cmd import ask

        console = Console(stderr=True)
        try:
            from bot_bottle.cli.summary import render_plan

            console.print(render_plan(shown))
        except ImportError:
            console.print(f"agent {shown.agent}  bottle {shown.bottle}  argv {list(shown.argv)}")
        console.print(f"backend: {backend.id}")
        if ask(approvals, verdict, yes):
            return True
        console.print("not started")
        return False

    return confirm


def _require_consent(yes: bool) -> None:
    if not yes and not sys.stdin.isatty():
        raise BotBottleError(
            "no terminal to confirm the launch on, and -y was not given",
            "review `bot-bottle plan AGENT`, approve it with `bot-bottle trust`, then pass -y",
        )


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("agent")
@click.argument("agent_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-y", "--yes", is_flag=True,
              help="Start without asking; refuses a configuration not approved (`trust`).")  # fmt: skip
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto",
              show_default=True, help="Sandbox runtime.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the bottle after exit (`bot-bottle resume`).")
@manifest_option
def run(agent: str, agent_args: tuple[str, ...], yes: bool, backend: str, keep: bool,
        manifest_file: str | None) -> None:  # fmt: skip
    """Start AGENT in a new bottle, attached to this terminal. Arguments after `--` go
    to the agent. The bottle is removed on exit unless --keep."""
    from bot_bottle.cli.trust_cmd import gate
    from bot_bottle.launch import RunOptions, run_bottle
    from bot_bottle.manifest.location import manifest_path
    from bot_bottle.plan.cache import cached_resolve
    from bot_bottle.state.approval import ApprovalStore

    _require_consent(yes)
    # One resolved path for everything: approvals are keyed by it, and a symlinked
    # manifest that is re-pointed later is a different, unapproved manifest.
    path = Path(os.path.realpath(manifest_path(manifest_file)))
    store = _store()
    _sweep(store)
    plan = cached_resolve(path, agent, os.environ, agent_args, store.root / "cache" / "plans")
    approvals = ApprovalStore(store.root)
    verdict = gate(approvals, plan, agent_args, unattended=yes)
    slugs: list[str] = []
    rc = run_bottle(
        verdict.plan, manifest_path=str(path), host_env=os.environ,
        options=RunOptions(backend=backend, keep=keep, tty=sys.stdin.isatty()), store=store,
        confirm=_confirm_factory(yes, plan, approvals, verdict),
        on_started=lambda m: slugs.append(m.slug),
    )  # fmt: skip
    if keep and slugs:
        click.echo(f"bottle kept: bot-bottle resume {slugs[0]}", err=True)
    sys.exit(rc)


@click.command()
@click.argument("slug", type=SLUG)
@click.option("-y", "--yes", is_flag=True,
              help="Start without asking; refuses a configuration not approved (`trust`).")  # fmt: skip
def resume(slug: str, yes: bool) -> None:
    """Start a kept bottle again: same HOME and workspace copy, fresh sidecars. A
    running bottle whose sidecar died (`degraded`) gets its sidecars started again. The
    manifest must still be approved (as for `run`)."""
    from bot_bottle.cli.trust_cmd import gate
    from bot_bottle.launch import RunOptions, resumable, run_bottle, status_of
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve

    _require_consent(yes)
    store = _store()
    if status_of(store.load(slug)) == "degraded":
        _restart(store, slug, yes)
        return
    meta = resumable(store, slug)
    loaded = load_manifest(Path(meta.manifest_path))
    if loaded.digest != meta.manifest_digest:
        click.secho(
            "note: the manifest changed since this bottle was created", err=True, fg="yellow"
        )
    plan = resolve(loaded, meta.agent, os.environ)
    from bot_bottle.state.approval import ApprovalStore

    approvals = ApprovalStore(store.root)
    verdict = gate(approvals, plan, (), unattended=yes)
    rc = run_bottle(
        verdict.plan, manifest_path=meta.manifest_path, host_env=os.environ,
        options=RunOptions(backend=meta.backend, keep=True, tty=sys.stdin.isatty()),
        store=store, confirm=_confirm_factory(yes, plan, approvals, verdict), existing=meta,
    )  # fmt: skip
    sys.exit(rc)


def _sweep(store: StateStore) -> None:
    """Before a launch: clean up after launches that were killed outright (what `gc`
    does for bottles with state), saying what went."""
    from bot_bottle.backends.docker.gc import collect

    for r in collect(store=store, orphans=False):
        if r.kind != "note" or r.name != "docker":
            click.echo(f"cleaned up after a killed launch: {r.kind} {r.name} ({r.reason})",
                       err=True)  # fmt: skip


def _restart(store: StateStore, slug: str, yes: bool) -> None:
    """`resume` of a degraded bottle: its sidecars again, under the approved plan."""
    from bot_bottle.cli.trust_cmd import gate
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve
    from bot_bottle.repair import dead_sidecars, restart_sidecars
    from bot_bottle.state.approval import ApprovalStore

    meta = store.load(slug)
    plan = resolve(load_manifest(Path(meta.manifest_path)), meta.agent, os.environ)
    verdict = gate(ApprovalStore(store.root), plan, (), unattended=yes)
    dead = dead_sidecars(meta)
    started = restart_sidecars(verdict.plan, meta, store, os.environ)
    click.echo(f"{slug}: {', '.join(dead)} had died; restarted "
               f"{', '.join(f'{h.name} (pid {h.pid})' for h in started)}", err=True)  # fmt: skip


@click.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(as_json: bool) -> None:
    """List bottles with their live status (`degraded`: a sidecar died)."""
    from bot_bottle.launch import status_of
    from bot_bottle.repair import restart_hint
    from bot_bottle.state.approval import ApprovalStore

    store = _store()
    approvals = ApprovalStore(store.root)
    rows = [(m, status_of(m), _approval(approvals, m)) for m in store.all()]
    damaged = store.damaged()
    for e in damaged:  # listed, not hidden, and never in the way of the others
        click.secho(f"{e.message}\n  fix: {e.fix}", err=True, fg="yellow")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "slug": m.slug,
                        "agent": m.agent,
                        "backend": m.backend,
                        "status": s,
                        "created": m.created,
                        "approval": a,
                    }
                    | ({"hint": restart_hint(m.slug)} if s == "degraded" else {})
                    for m, s, a in rows
                ]
                + [
                    {"slug": Path(e.path).parent.name, "status": "damaged", "error": e.message}
                    for e in damaged
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    if not rows and not damaged:
        click.echo("no bottles; start one with `bot-bottle run AGENT`")
        return
    t = Table("slug", "agent", "backend", "status", "approval", "created")
    for m, s, a in rows:
        t.add_row(m.slug, m.agent, m.backend, s, a, m.created)
    for e in damaged:
        t.add_row(Path(e.path).parent.name, "?", "?", "damaged", "?", "?")
    Console().print(t)
    for m, s, _ in rows:
        if s == "degraded":
            click.echo(f"{m.slug} is degraded (a sidecar died; no network): "
                       f"{restart_hint(m.slug)}", err=True)  # fmt: skip


def _approval(approvals: ApprovalStore, meta: BottleMetadata) -> str:
    """The bottle's approval status; a damaged approval file is one bottle's problem."""
    from bot_bottle.errors import DamagedState

    try:
        return approvals.status(meta.manifest_path, meta.agent)
    except DamagedState:
        return "damaged"


@click.command()
@click.argument("slug", type=SLUG)
def info(slug: str) -> None:
    """Show a bottle's metadata (never a secret) and where its files are."""
    from dataclasses import asdict

    from bot_bottle.launch import status_of

    store = _store()
    meta = store.load(slug)
    out = asdict(meta)
    out["status"] = status_of(meta)
    out["state_dir"] = str(store.dir(slug))
    click.echo(json.dumps(out, indent=2, sort_keys=True))


@click.command()
@click.argument("slug", type=SLUG)
def stop(slug: str) -> None:
    """Stop a running bottle (its agent and sidecars)."""
    from bot_bottle.launch import stop_bottle

    stop_bottle(_store(), slug)
    click.echo(f"stopped {slug}", err=True)


@click.command()
@click.argument("slugs", nargs=-1, required=True, type=SLUG)
def rm(slugs: tuple[str, ...]) -> None:
    """Stop and delete bottles, with their state."""
    from bot_bottle.launch import remove_bottle

    store = _store()
    for slug in slugs:
        remove_bottle(store, slug)
        click.echo(f"removed {slug}", err=True)


@click.group()
def agents() -> None:
    """Agent CLIs in bot-bottle's own npm prefix (seen read-only by every bottle)."""


@agents.command(name="install")
@click.argument("names", nargs=-1, required=True)
def agents_install(names: tuple[str, ...]) -> None:
    """Install agent CLIs (claude, codex) from npm into bot-bottle's prefix."""
    from bot_bottle.agents import install
    from bot_bottle.launch import agents_dir

    install(names, agents_dir(_store()))


@agents.command(name="ls")
def agents_ls() -> None:
    """Show installed agent CLIs and their versions."""
    from bot_bottle.agents import installed
    from bot_bottle.launch import agents_dir

    prefix = agents_dir(_store())
    found = installed(prefix)
    if not found:
        click.echo(f"none installed in {prefix}; try `bot-bottle agents install claude codex`")
    for name, version in found.items():
        click.echo(f"{name} {version}")
