"""`bot-bottle egress serve` (the sidecar entry point) and `bot-bottle logs` (the audit log)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from bot_bottle.cli.options import SLUG
from bot_bottle.errors import StateError
from bot_bottle.sidecars.egress.audit import read_audit, verify_chain


@click.group()
def egress() -> None:
    """The egress sidecar (normally started by `bot-bottle run`, not by hand)."""


@egress.command("warm")
@click.option("--stop", is_flag=True, help="Stop the warm process instead.")
def warm(stop: bool) -> None:
    """Keep one pre-imported egress process running, so `run` starts in well under a
    second: it forks one sidecar per bottle (each bottle's credentials live only in
    its own child). Without it, each `run` pays mitmproxy's ~0.7 s import."""
    import signal

    from bot_bottle.executor import Cmd, ProcessExecutor
    from bot_bottle.launch import zygote_socket
    from bot_bottle.sidecars.process import alive, spawn_sidecar
    from bot_bottle.state.store import StateStore

    sock = zygote_socket(StateStore())
    pidfile = sock.with_suffix(".pid")
    running = int(pidfile.read_text()) if pidfile.is_file() else 0
    if running and not alive(running):
        running = 0
    if stop:
        if running:
            os.kill(running, signal.SIGTERM)  # its children lead their own sessions
            click.echo(f"stopped warm egress (pid {running})")
        else:
            click.echo("no warm egress running")
        pidfile.unlink(missing_ok=True)
        sock.unlink(missing_ok=True)
        return
    if running:
        click.echo(f"warm egress already running (pid {running}, {sock})")
        return
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = Cmd((sys.executable, "-m", "bot_bottle.sidecars.egress.zygote", str(sock)))
    zy = spawn_sidecar("egress zygote", cmd, sock.with_suffix(".log"), sock, ProcessExecutor())
    pidfile.write_text(f"{zy.pid}\n")
    click.echo(f"warm egress running (pid {zy.pid}); stop it with `bot-bottle egress warm --stop`")


@egress.command("serve")
@click.option(
    "--routes",
    "routes",
    required=True,
    type=click.Path(dir_okay=False),
    help="Routes file rendered from the bottle plan (JSON; hot-reloaded).",
)
@click.option("--listen", required=True, help="HOST:PORT or unix:PATH.")
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append one hash-chained JSON line per decision here.",
)
@click.option(
    "--confdir",
    type=click.Path(file_okay=False),
    default=None,
    help="mitmproxy confdir; the agent trusts its mitmproxy-ca-cert.pem.",
)
def serve_cmd(routes: str, listen: str, audit_log: str | None, confdir: str | None) -> None:
    """Run the egress proxy. Prints `READY <address>` when it accepts connections.

    Credential values come only from this process's environment (EGRESS_TOKEN_<n>,
    EGRESS_PROTECT_<n>); the routes file names slots.
    """
    from bot_bottle.sidecars.egress.server import serve

    sys.exit(serve(routes, listen, audit_log, confdir, os.environ))


def _follow(path: Path, follow: bool) -> Iterator[dict[str, Any]]:
    seen = 0
    while True:
        if path.exists():
            for n, rec in enumerate(read_audit(path)):
                if n >= seen:
                    seen = n + 1
                    yield rec
        if not follow:
            return
        time.sleep(0.5)


def _row(rec: dict[str, Any]) -> tuple[str, str, str, str]:
    ts = str(rec.get("ts", ""))[11:23]
    kind = rec.get("kind", "request")
    if "_bad" in rec:
        return ts, "?", "unparseable line", ""
    if kind == "git-push":
        refs = ", ".join(rec.get("refs", [])) if isinstance(rec.get("refs"), list) else ""
        what = f"git push {rec.get('remote', '')} {refs}".strip()
        verdict = str(rec.get("verdict", rec.get("decision", "")))
        detail = f"{rec.get('findings', 0)} findings" + (
            f"; {rec['reason']}" if rec.get("reason") else ""
        )
        return ts, verdict, what, detail
    if kind == "reload":
        return ts, str(rec.get("decision", "")), "routes reload", str(rec.get("reason", ""))
    what = f"{rec.get('method', '')} {rec.get('host', '')}{rec.get('path', '')}".strip()
    if rec.get("decision") == "allow":
        detail = (
            f"{rec.get('status', '')} {rec.get('route', '')} "
            f"{rec.get('bytes_out', 0)}↑ {rec.get('bytes_in', 0)}↓ {rec.get('duration_ms', 0)}ms"
        )
    else:
        detail = f"[{rec.get('rule', '')}] {rec.get('reason', '')}"
        if rec.get("expected"):
            detail += " (the agent CLI's own background call)"
    return ts, str(rec.get("decision", "")), what, detail


def _is_denied(rec: dict[str, Any]) -> bool:
    return rec.get("decision") in ("deny", "error") or rec.get("verdict") in ("deny", "rejected")


def _shown(rec: dict[str, Any], denied: bool, everything: bool) -> bool:
    """`--denied` shows denials and errors, leaving out the agent CLI's own expected
    background calls (`expected` in the record) unless `--all`."""
    if not denied:
        return True
    return _is_denied(rec) and (everything or not rec.get("expected"))


@click.command()
@click.argument("slug", required=False, type=SLUG)
@click.option("--file", "file_", type=click.Path(dir_okay=False), help="Audit file to read.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--denied", is_flag=True, help="Only denials and errors.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="With --denied: also the agent CLI's expected background denials.",
)
@click.option("--json", "as_json", is_flag=True, help="Raw JSON lines.")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if broken.")
def logs(
    slug: str | None,
    file_: str | None,
    follow: bool,
    denied: bool,
    everything: bool,
    as_json: bool,
    verify: bool,
) -> None:
    """Show a bottle's egress and git-gate audit log."""
    if file_:
        path = Path(file_)
    elif slug:
        from bot_bottle.state.store import StateStore

        path = StateStore().find_audit_log(slug)
    else:
        raise click.UsageError("give a bottle SLUG or --file PATH")
    if not path.exists() and not follow:
        raise StateError(f"no audit log at {path}", "see `bot-bottle ls` for bottle names")
    if verify:
        ok, bad = verify_chain(path)
        if ok:
            click.echo(f"audit chain intact: {path}")
            return
        click.secho(f"audit chain broken at line {bad}: {path}", fg="red", err=True)
        sys.exit(1)
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    colour = {"allow": "green", "deny": "red", "error": "yellow"}
    for rec in _follow(path, follow):
        if not _shown(rec, denied, everything):
            continue
        if as_json:
            click.echo(json.dumps(rec, sort_keys=True))
            continue
        ts, verdict, what, detail = _row(rec)
        style = colour.get(verdict, "white")
        console.print(
            f"[dim]{ts}[/] [{style}]{verdict:5}[/] {escape(what)}  [dim]{escape(detail)}[/]",
            markup=True,
            soft_wrap=True,
        )
