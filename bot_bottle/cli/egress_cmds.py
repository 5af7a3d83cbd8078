"""`bot-bottle egress serve` (the sidecar entry point) and `bot-bottle logs` (the audit log)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot_bottle.cli import output
from bot_bottle.cli.options import SLUG
from bot_bottle.errors import StateError
from bot_bottle.sidecars.egress.audit import read_audit, verify_chain

if TYPE_CHECKING:
    from bot_bottle.state.store import StateStore


@click.group()
def egress() -> None:
    """The egress sidecar (normally started by `bot-bottle run`, not by hand)."""


@egress.command("warm")
@click.option("--stop", is_flag=True, help="Stop every egress helper instead.")
def warm(stop: bool) -> None:
    """Start the per-user egress helper now (or say it runs), or stop it with --stop.

    `run` starts the helper itself on first use and reuses it: a pre-imported process
    that forks one egress sidecar per bottle (each bottle's credentials live only in its
    own child), so a run skips mitmproxy's import. It exits after
    BOT_BOTTLE_EGRESS_HELPER_IDLE seconds (default 1800) without a request;
    BOT_BOTTLE_EGRESS_HELPER=off makes every run start its sidecar cold instead."""
    from bot_bottle.executor import ProcessExecutor
    from bot_bottle.launch import run_dir
    from bot_bottle.sidecars.egress import helper
    from bot_bottle.state.store import StateStore

    where = run_dir(StateStore())
    if stop:
        pids = helper.stop_all(where)
        click.echo(f"stopped egress helper (pid {', '.join(map(str, pids))})" if pids
                   else "no egress helper running")  # fmt: skip
        return
    st = helper.status(where)
    if st.pid is None:
        helper.ensure(where, ProcessExecutor())
        st = helper.status(where)
    click.echo(
        f"egress helper running (pid {st.pid}, exits after {st.idle:g} s idle, log {st.log});"
        " stop it with `bot-bottle egress warm --stop`"
    )


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
    if kind in ("grant", "answer"):  # supervise: who granted or denied what
        what = f"{kind} {rec.get('request', '')} by {rec.get('decided_by', '')}"
        return ts, str(rec.get("decision", "")), what, str(rec.get("reason", ""))
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


def _last_slug(store: StateStore) -> str:
    """The newest bottle (running, kept or removed) of the manifest this directory
    uses, named on stderr so the user learns its slug."""
    from bot_bottle.manifest.location import manifest_path

    where = manifest_path()
    if not where.is_file():
        raise StateError(f"no manifest at {where} to find the last bottle of",
                         "give the bottle's SLUG (`bot-bottle ls --all` lists them)")  # fmt: skip
    meta = store.last(os.path.realpath(where))
    if meta is None:
        raise StateError(f"no bottle of {os.path.realpath(where)} yet",
                         "`bot-bottle ls --all` lists every bottle")  # fmt: skip
    click.echo(f"bottle {meta.slug} (agent {meta.agent}, {meta.status}, created "
               f"{meta.created})", err=True)  # fmt: skip
    return str(meta.slug)


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
@click.option("--last", is_flag=True,
              help="The last bottle of this directory's manifest (the default without SLUG).")  # fmt: skip
def logs(
    slug: str | None, file_: str | None, follow: bool, denied: bool, everything: bool,
    as_json: bool, verify: bool, last: bool,
) -> None:  # fmt: skip
    """Show a bottle's egress and git-gate audit log (removed bottles' too). Without
    SLUG: the last bottle started from this directory's manifest."""
    from bot_bottle.state.store import StateStore

    if last and (slug or file_):
        raise click.UsageError("give either SLUG, --file PATH or --last")
    if file_:
        path = Path(file_)
    else:
        store = StateStore()
        slug = slug or _last_slug(store)
        path = store.find_audit_log(slug)
        if not path.exists() and not follow:
            store.load_any(slug)  # no such bottle: says so, with the fix
            click.echo(f"bottle {slug} has no audit entries: nothing has tried to leave it",
                       err=True)  # fmt: skip
            return
    if not path.exists() and not follow:
        raise StateError(f"no audit log at {path}", "see `bot-bottle ls` for bottle names")
    if verify:
        ok, bad = verify_chain(path)
        if ok:
            click.echo(f"audit chain intact: {path}")
            return
        click.secho(f"audit chain broken at line {bad}: {path}\n  the lines before it are "
                    "intact; that line was edited, removed or cut short (a disk fault, or "
                    "tampering): keep the file as it is for review", fg="red", err=True)  # fmt: skip
        sys.exit(1)
    from rich.markup import escape

    from bot_bottle.cli.supervise_cmds import defuse

    console = output.console(highlight=False)
    colour = {"allow": "green", "deny": "red", "error": "yellow"}
    for rec in _follow(path, follow):
        if not _shown(rec, denied, everything):
            continue
        if as_json:
            click.echo(json.dumps(rec, sort_keys=True))
            continue
        ts, verdict, what, detail = (defuse(x) for x in _row(rec))  # agent-written text
        style = colour.get(verdict, "white")
        console.print(
            f"[dim]{ts}[/] [{style}]{verdict:5}[/] {escape(what)}  [dim]{escape(detail)}[/]",
            markup=True,
            soft_wrap=True,
        )
