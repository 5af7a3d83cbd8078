"""`bot-bottle trust`, and the approval gate `run` and `resume` pass through.

A configuration the operator has not approved (or that changed since) never starts
unattended: `-y` and a launch without a terminal stop with exit 2, the changes, and
the `trust` command that approves them. On a terminal the summary (or the changes) is
the question, and `y` records the approval.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot_bottle.cli.options import manifest_option

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
    from bot_bottle.state.approval import ApprovalStore, Verdict


def describe_verdict(v: Verdict) -> str:
    """What `run`, `trust`, `plan` and `check` print about a verdict: a heading, then
    the changes (every line, for a configuration never approved)."""
    from bot_bottle.plan.review import render_changes

    where = f"agent {v.plan.agent} of {v.plan.manifest_path}"
    if v.status == "approved":
        return f"approval: approved ({where} is unchanged since it was approved)"
    head = (
        f"approval: NOT APPROVED: {where} has never been approved; it would run with:"
        if v.status == "unapproved"
        else f"approval: CHANGED since it was approved ({where}):"
    )
    return "\n".join([head, *("  " + ln for ln in render_changes(v.changes))])


def trust_hint(manifest: str) -> str:
    return f"bot-bottle trust -f {manifest}"


def gate(store: ApprovalStore, plan: BottlePlan, extra: tuple[str, ...], unattended: bool
         ) -> Verdict:  # fmt: skip
    """The approval verdict for a launch of `plan`. Unattended, anything but an approved
    configuration stops here, before anything starts: exit 2 with the changes."""
    from bot_bottle.state.approval import NotApproved, evaluate

    v = evaluate(store, plan, extra, pin=True)
    if unattended and not v.approved:
        click.echo(describe_verdict(v), err=True)
        what = "has never been approved" if v.status == "unapproved" else "changed since approval"
        raise NotApproved(
            f"the configuration of agent {plan.agent} in {plan.manifest_path} {what}; "
            "an unattended launch (-y or no terminal) starts only an approved one",
            f"review the lines above, then approve them: {trust_hint(plan.manifest_path)}",
        )
    return v


def ask(store: ApprovalStore, v: Verdict, yes: bool) -> bool:
    """After the summary: start an approved configuration (asking unless -y); for any
    other, show what is new and let `y` approve it."""
    click.echo(describe_verdict(v), err=True)
    if v.approved:
        return yes or click.confirm("Start this bottle?", default=False, err=True)
    question = (
        "Approve this configuration and start the bottle?"
        if v.status == "unapproved"
        else "Approve these changes and start the bottle?"
    )
    if not click.confirm(question, default=False, err=True):
        return False
    store.approve(v)
    return True


@click.command()
@click.argument("agents", nargs=-1)
@click.option("-y", "--yes", is_flag=True, help="Approve without asking (scripted setups).")
@manifest_option
def trust(agents: tuple[str, ...], yes: bool, manifest_file: str | None) -> None:
    """Approve the manifest's configuration for every agent (or the AGENTS named), so
    `run -y` may start it. Shows what changed since the last approval first."""
    from bot_bottle.cli.options import locate
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve
    from bot_bottle.state.approval import ApprovalStore, evaluate
    from bot_bottle.state.store import StateStore

    path = Path(os.path.realpath(locate(manifest_file)))
    store = ApprovalStore(StateStore().root)
    loaded = load_manifest(path)
    names = agents or tuple(sorted(loaded.manifest.agents))
    verdicts = [evaluate(store, resolve(loaded, n, os.environ)) for n in names]
    pending = [v for v in verdicts if not v.approved]
    for v in verdicts:
        click.echo(describe_verdict(v), err=True)
    if not pending:
        click.echo(f"nothing to approve: {path} is approved as it is", err=True)
        return
    if not yes:
        if not sys.stdin.isatty():
            from bot_bottle.errors import BotBottleError

            raise BotBottleError(
                "no terminal to ask on", f"pass --yes: {trust_hint(str(path))} --yes"
            )
        if not click.confirm("Approve?", default=False, err=True):
            sys.exit(1)
    for v in pending:
        store.approve(v)
    click.echo(f"approved {', '.join(v.plan.agent for v in pending)} in {path}", err=True)
