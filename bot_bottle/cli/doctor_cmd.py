"""`bot-bottle doctor`: which backends can run here, and what the others lack; and,
for the manifest here (if any), what a `run` of each of its agents would meet."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bot_bottle.backends import probe_all
from bot_bottle.backends.spec import Availability
from bot_bottle.cli import output
from bot_bottle.errors import BotBottleError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Probe each backend for real and say what it gives on this host; then, when a
    manifest is found here or above, what would stop a `run` of each agent (exit 1)."""
    results = probe_all()
    microvm = _microvm(dict(results).get("microvm"))
    agents, problem = _agents()
    blocked = problem is not None or any(not a["ready"] for a in agents)
    if as_json:
        backends = [
            {"backend": name, "ok": a.ok, "detail": a.detail, "missing": list(a.missing)}
            for name, a in results
        ]
        out = {"backends": backends, "agents": agents, "manifest_error": problem,
               "microvm": microvm}  # fmt: skip
        click.echo(json.dumps(out, indent=2))
        sys.exit(1 if blocked else 0)
    table = Table(title="backends")
    for col in ("backend", "status", "detail", "missing"):
        table.add_column(col)
    for name, a in results:
        status = "[green]ready[/green]" if a.ok else "[red]unavailable[/red]"
        table.add_row(name, status, a.detail, "\n".join(a.missing))
    console = output.console()
    console.print(table)
    console.print(_helper_line(), markup=False)
    for line in microvm["lines"]:  # unwrapped: a verdict stays one line to grep for
        console.print(line, markup=False, soft_wrap=True)
    if problem is not None:
        console.print(f"manifest: {problem}", style="red", markup=False)
    if agents:
        console.print(f"manifest: {agents[0]['manifest']}", markup=False)
    for ag in agents:
        if ag["ready"]:
            console.print(f"agent {ag['agent']}: [green]ready[/green] on backend {ag['backend']}")
            continue
        console.print(f"agent {ag['agent']}: [red]blocked[/red] on backend {ag['backend']}:")
        for b in ag["blockers"]:
            console.print(f"  - {b['message']}" + (f"\n    fix: {b['fix']}" if b["fix"] else ""),
                          markup=False)  # fmt: skip
    for ag in agents:
        for n in ag["notes"]:
            console.print(f"agent {ag['agent']}: note: {n}", markup=False)
    sys.exit(1 if blocked else 0)


def _agents() -> tuple[list[dict[str, Any]], str | None]:
    """Each agent's prediction for the manifest `run` would read here (none when there
    is no manifest), or the manifest's own error."""
    from bot_bottle.cli.prediction import predict, prediction_dict, verdict_of
    from bot_bottle.manifest.location import ENV_VAR, search_upward

    if os.environ.get(ENV_VAR):
        from bot_bottle.manifest.location import find_manifest

        try:
            path = find_manifest()
        except BotBottleError as e:
            return [], e.message
    else:
        found, _ = search_upward(Path.cwd(), os.environ.get("HOME", ""))
        if found is None:
            return [], None
        path = found
    from bot_bottle.cli.manifest_cmds import resolve_all
    from bot_bottle.manifest.loader import load_manifest

    try:
        plans = resolve_all(load_manifest(path))
    except BotBottleError as e:
        return [], str(e)
    out = [{"agent": p.agent, "manifest": str(path),
            **prediction_dict(predict(p, "auto", verdict_of(p)))} for p in plans]  # fmt: skip
    return out, None


def _microvm(found: Availability | None) -> dict[str, Any]:
    """The microvm backend's section: the registry's verdict `found` (None when the
    backend did not register), the accelerators as real boots found them, what it gives."""
    from dataclasses import asdict

    from bot_bottle.backends.microvm.report import report

    if found is None:
        return {"accels": [], "not_probed": "the backend is not registered", "lines": []}
    r = report(found)
    return {"accels": [asdict(a) for a in r.accels], "not_probed": r.not_probed,
            "kernel": r.kernel, "missing": r.missing(), "lines": r.lines()}  # fmt: skip


def _helper_line() -> str:
    """The per-user egress helper's state: it makes every run after the first fast."""
    from bot_bottle.launch import run_dir
    from bot_bottle.sidecars.egress import helper
    from bot_bottle.state.store import StateStore

    st = helper.status(run_dir(StateStore()))
    if not st.enabled:
        return f"egress helper: off ({helper.ENABLED_ENV}); each run starts its sidecar cold"
    if st.pid is None:
        return "egress helper: not running; the next run starts it (`bot-bottle egress warm`)"
    return f"egress helper: running (pid {st.pid}, exits after {st.idle:g} s idle, log {st.log})"
