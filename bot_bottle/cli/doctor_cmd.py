"""`bot-bottle doctor`: which backends can run here, and what the others lack."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from bot_bottle.backends import probe_all


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Probe each backend for real and say what it gives on this host."""
    results = probe_all()
    if as_json:
        out = [
            {"backend": name, "ok": a.ok, "detail": a.detail, "missing": list(a.missing)}
            for name, a in results
        ]
        click.echo(json.dumps(out, indent=2))
        return
    table = Table(title="backends")
    for col in ("backend", "status", "detail", "missing"):
        table.add_column(col)
    for name, a in results:
        status = "[green]ready[/green]" if a.ok else "[red]unavailable[/red]"
        table.add_row(name, status, a.detail, "\n".join(a.missing))
    Console().print(table)
    click.echo(_helper_line())


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
