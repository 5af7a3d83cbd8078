"""`run`, `resume`, `ls`, `info`, `stop`, `rm`, `agents`: bottles' lifecycle commands.

Longer than 300 lines because these commands share their option parsing, approval
gate and before/after messages; each command body is short."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from bot_bottle.cli import output
from bot_bottle.cli.options import SLUG, manifest_option
from bot_bottle.errors import BotBottleError
from bot_bottle.names import BACKENDS

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
    from bot_bottle.state.approval import ApprovalStore, Verdict
    from bot_bottle.state.ending import Ending
    from bot_bottle.state.store import BottleMetadata, StateStore
    from bot_bottle.state.user_config import NotifyHook


def _store() -> StateStore:
    from bot_bottle.state.store import StateStore

    return StateStore()


def _confirm_factory(yes: bool, shown: BottlePlan, approvals: ApprovalStore, verdict: Verdict):  # type: ignore[no-untyped-def]
    """Show the summary of `shown` (the plan as resolved, before the approval pinned
    file contents into it) with the preflight's notes, then the approval verdict; ask,
    or not with -y."""

    def confirm(plan, backend, notes) -> bool:  # type: ignore[no-untyped-def]
        from bot_bottle.cli.trust_cmd import ask

        # Asked last: the manifest, the approval (-y) and every blocker of the launch
        # were checked before, so a missing terminal never hides a real problem.
        _require_consent(yes)
        from bot_bottle.cli.summary import show_plan

        show_plan(shown, backend.id, notes)
        if ask(approvals, verdict, yes):
            return True
        click.echo("not started", err=True)
        return False

    return confirm


def _say_started(meta: BottleMetadata) -> None:
    """The slug, before the agent takes the terminal: the name every other command
    (`logs`, `stop`, `exec`) needs, from another terminal."""
    click.echo(
        f"bottle {meta.slug} started; from another terminal: `bot-bottle logs {meta.slug}`, "
        f"`bot-bottle stop {meta.slug}`",
        err=True,
    )


def _say_ended(keep: bool) -> Callable[[Ending], None]:
    """Once the terminal is the user's again: why the bottle ended, and where it went
    (a kept one: `_after_exit` says how to resume it, once)."""

    def say(ending: Ending) -> None:
        click.echo(ending.sentence(), err=True)
        if not keep:
            click.echo(f"bottle removed; its log remains: bot-bottle logs {ending.slug}",
                       err=True)  # fmt: skip

    return say


def _exit_now(rc: int) -> NoReturn:
    """End `run`/`resume` with the agent's code once the bottle is cleaned up: its
    sidecars gone, its state written and closed. What is left is the interpreter's
    teardown of every module the launch imported (~10 ms, a few % of `run`), which
    nothing needs: skipped, after the output is flushed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(rc)


def _require_consent(yes: bool) -> None:
    if not yes and not sys.stdin.isatty():
        raise BotBottleError(
            "no terminal to confirm the launch on, and -y was not given",
            "review `bot-bottle plan AGENT`, approve it with `bot-bottle trust`, then pass -y",
        )


CONTINUE_OPTION = click.option(
    "--continue", "continue_", is_flag=True,
    help="Continue the agent's last conversation in this bottle's HOME (claude --continue, "
    "codex resume --last); for `resume` of a kept bottle.",
)  # fmt: skip


def _continue_args(provider: str) -> tuple[str, ...]:
    from bot_bottle.providers import provider_for

    args = provider_for(provider).continue_args
    if not args:
        raise BotBottleError(f"--continue: the {provider} template keeps no conversations",
                             "leave out --continue")  # fmt: skip
    return args


def _after_exit(slug: str, provider: str, kept: bool) -> None:
    """How to get back to the bottle. Agents print their own "resume with: claude
    --resume ..." on exit, which names a command of the bottle's HOME, not the host's."""
    from bot_bottle.providers import provider_for

    talks = bool(provider_for(provider).continue_args)
    if kept:
        more = f"; its last conversation: bot-bottle resume {slug} --continue" if talks else ""
        click.echo(f"bottle kept: bot-bottle resume {slug}{more}", err=True)
    elif talks:
        click.echo(f"bottle {slug} removed, with the conversation the agent offers to resume "
                   "(run with --keep to keep it)", err=True)  # fmt: skip


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("agent")
@click.argument("agent_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-y", "--yes", is_flag=True,
              help="Start without asking; refuses a configuration not approved (`trust`).")  # fmt: skip
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto",
              show_default=True, help="Sandbox runtime.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the bottle after exit (`bot-bottle resume`).")
@click.option("--share-workspace", is_flag=True,
              help="Run even if another bottle is working in the same mounted workspace.")  # fmt: skip
@CONTINUE_OPTION
@manifest_option
def run(agent: str, agent_args: tuple[str, ...], yes: bool, backend: str, keep: bool,
        share_workspace: bool, continue_: bool, manifest_file: str | None) -> None:  # fmt: skip
    """Start AGENT in a new bottle, attached to this terminal. Arguments after `--` go
    to the agent. The bottle is removed on exit unless --keep. A mounted workspace is
    locked while the bottle runs: a second bottle on it is refused (--share-workspace)."""
    from bot_bottle.cli.options import locate
    from bot_bottle.cli.trust_cmd import gate
    from bot_bottle.launch import RunOptions, run_bottle
    from bot_bottle.plan.cache import cached_resolve
    from bot_bottle.state.approval import ApprovalStore

    # One resolved path for everything: approvals are keyed by it, and a symlinked
    # manifest that is re-pointed later is a different, unapproved manifest.
    path = Path(os.path.realpath(locate(manifest_file)))
    store = _store()
    _sweep(store)
    plan = cached_resolve(path, agent, os.environ, agent_args, store.root / "cache" / "plans")
    if continue_:
        agent_args = (*_continue_args(plan.provider), *agent_args)
        plan = cached_resolve(path, agent, os.environ, agent_args, store.root / "cache" / "plans")
    approvals = ApprovalStore(store.root)
    verdict = gate(approvals, plan, agent_args, unattended=yes)
    slugs: list[str] = []

    def started(meta: BottleMetadata) -> None:
        slugs.append(meta.slug)
        _say_started(meta)

    rc = run_bottle(
        verdict.plan, manifest_path=str(path), host_env=os.environ,
        options=RunOptions(backend=backend, keep=keep, tty=sys.stdin.isatty(),
                           share_workspace=share_workspace, notify=_notify_hook()), store=store,
        confirm=_confirm_factory(yes, plan, approvals, verdict),
        on_started=started, on_ended=_say_ended(keep),
    )  # fmt: skip
    if slugs:
        _after_exit(slugs[0], plan.provider, kept=keep)
    _exit_now(rc)


@click.command()
@click.argument("slug", type=SLUG)
@click.option("-y", "--yes", is_flag=True,
              help="Start without asking; refuses a configuration not approved (`trust`).")  # fmt: skip
@click.option("--share-workspace", is_flag=True,
              help="Run even if another bottle is working in the same mounted workspace.")  # fmt: skip
@CONTINUE_OPTION
def resume(slug: str, yes: bool, share_workspace: bool, continue_: bool) -> None:
    """Start a kept bottle again: same HOME and workspace copy, fresh sidecars. A
    running bottle whose sidecar died (`degraded`) gets its sidecars started again. The
    manifest must still be approved (as for `run`)."""
    from bot_bottle.cli.trust_cmd import gate
    from bot_bottle.launch import RunOptions, resumable, run_bottle, status_of
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve

    store = _store()
    if status_of(store.load(slug)) == "degraded":
        _restart(store, slug, yes)
        return
    meta = resumable(store, slug)
    if not os.path.isabs(meta.manifest_path):
        from bot_bottle.errors import StateError

        raise StateError(
            f"bottle {slug} was made by an earlier bot-bottle, which recorded its manifest "
            f"as the relative path {meta.manifest_path!r}",
            f"`bot-bottle rm {slug}` and start a new one (bottles record absolute paths now)",
        )
    loaded = load_manifest(Path(meta.manifest_path))
    if loaded.digest != meta.manifest_digest:
        click.secho(
            "note: the manifest changed since this bottle was created", err=True, fg="yellow"
        )
    plan = resolve(loaded, meta.agent, os.environ)
    extra: tuple[str, ...] = ()
    if continue_:
        extra = _continue_args(plan.provider)
        plan = resolve(loaded, meta.agent, os.environ, extra)
    from bot_bottle.state.approval import ApprovalStore

    approvals = ApprovalStore(store.root)
    verdict = gate(approvals, plan, extra, unattended=yes)
    rc = run_bottle(
        verdict.plan, manifest_path=meta.manifest_path, host_env=os.environ,
        options=RunOptions(backend=meta.backend, keep=True, tty=sys.stdin.isatty(),
                           share_workspace=share_workspace, notify=_notify_hook()),
        store=store, confirm=_confirm_factory(yes, plan, approvals, verdict), existing=meta,
        on_started=_say_started, on_ended=_say_ended(True),
    )  # fmt: skip
    _after_exit(slug, plan.provider, kept=True)
    _exit_now(rc)


def _notify_hook() -> NotifyHook | None:
    """The user's notification hook for supervise requests (`state/user_config.py`)."""
    from bot_bottle.state.user_config import load_user_config

    return load_user_config().notify


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
@click.option("--all", "every", is_flag=True,
              help="Also removed bottles whose logs remain (`bot-bottle logs SLUG`).")  # fmt: skip
def ls(as_json: bool, every: bool) -> None:
    """List bottles with their live status (`degraded`: a sidecar died)."""
    from bot_bottle.launch import status_of
    from bot_bottle.repair import restart_hint
    from bot_bottle.state.approval import ApprovalStore

    store = _store()
    approvals = ApprovalStore(store.root)
    metas = [*store.all(), *(store.retired() if every else [])]
    rows = [(m, status_of(m), _approval(approvals, m)) for m in metas]
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
    from rich.table import Column, Table

    if not rows and not damaged:
        more = "" if every or not store.retired() else " (`ls --all` lists removed ones)"
        click.echo(f"no bottles{more}; start one with `bot-bottle run AGENT`")
        return
    t = Table("agent", "backend", "status", "approval", "created")
    # Wide enough for any slug of these agents (`agent-WORD-HEX`, words up to 7
    # letters), so the table keeps its shape from one listing to the next.
    t.columns.insert(
        0, Column("slug", min_width=max((len(m.agent) for m, _, _ in rows), default=5) + 13)
    )
    for m, s, a in rows:
        t.add_row(m.slug, m.agent, m.backend, s, a, m.created)
    for e in damaged:
        t.add_row(Path(e.path).parent.name, "?", "?", "damaged", "?", "?")
    output.console().print(t)
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
    """Show installed agent CLIs, their versions and paths."""
    from bot_bottle.agents import installed
    from bot_bottle.launch import agents_dir

    prefix = agents_dir(_store())
    found = installed(prefix)
    if not found:
        click.echo(f"none installed in {prefix}; try `bot-bottle agents install claude codex`")
    for name, version in found.items():
        click.echo(f"{name} {version}  {prefix / 'bin' / name}")
    if found:
        click.echo("run one on the host (to log in): bot-bottle agents exec NAME -- ARGS")


@agents.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agents_exec(name: str, args: tuple[str, ...]) -> None:
    """Run an installed agent CLI on the host, outside any bottle: for logging in
    (`bot-bottle agents exec claude -- setup-token`, `... codex -- login`)."""
    from bot_bottle.agents import exec_on_host
    from bot_bottle.launch import agents_dir

    exec_on_host(name, agents_dir(_store()), args, os.environ)
