"""`requests`, `grant`, `deny`: the operator's side of supervise.

An agent in a bottle with `supervise: true` asks through its egress (see
`sidecars/egress/supervise.py`); its requests wait in the bottle's state directory.
A granted route is added to the running bottle's routes file, which its egress reloads
within a second; it ends with the bottle, or earlier with `--for`.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click

from bot_bottle.errors import BotBottleError
from bot_bottle.policy.egress_policy import EgressPolicy, Route, RouteSource
from bot_bottle.policy.supervise import credential_route
from bot_bottle.state.requests import ID_RE, AskRecord, RequestDir
from bot_bottle.state.store import StateStore

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Found:
    slug: str
    requests: RequestDir
    routes: Path


def _egress_dir(store: StateStore, slug: str) -> Path:
    return store.dir(slug) / "sidecars" / "egress"


def _bottles(store: StateStore) -> list[Found]:
    out = []
    for meta in store.all():
        eg = _egress_dir(store, meta.slug)
        out.append(Found(meta.slug, RequestDir(eg / "requests", meta.bottle), eg / "routes.json"))
    return out


def _find(store: StateStore, rid: str) -> tuple[Found, AskRecord]:
    if not ID_RE.match(rid):
        raise BotBottleError(f"{rid!r} is not a request id (they look like r-1a2b3c4d)",
                             "`bot-bottle requests` lists them")  # fmt: skip
    for found in _bottles(store):
        rec = found.requests.get(rid)
        if rec is not None:
            return found, rec
    raise BotBottleError(f"no request {rid}", "`bot-bottle requests --all` lists them")


def parse_duration(text: str) -> float:
    m = _DURATION_RE.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise click.BadParameter(f"{text!r}: a duration like 90s, 30m, 2h or 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _status(store: StateStore, slug: str) -> str:
    from bot_bottle.launch import status_of

    try:
        return status_of(store.load(slug))
    except BotBottleError:
        return "gone"


def _running(store: StateStore, slug: str) -> bool:
    return _status(store, slug) in ("running", "degraded", "starting")


@click.command("requests")
@click.option("--all", "show_all", is_flag=True, help="Also requests already answered.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def requests(show_all: bool, as_json: bool) -> None:
    """List what agents asked their operator (pending ones, unless --all)."""
    rows = listed_requests(StateStore(), show_all)
    if as_json:
        click.echo(json.dumps([{"bottle": slug, **r.view(), "reason": r.ask.reason,
                                "created": r.created} for slug, r in rows], indent=2))  # fmt: skip
        return
    if not rows:
        click.echo("no requests waiting" if not show_all else "no requests")
        return
    now = time.time()
    for slug, r in rows:
        age = int(now - r.created)
        click.echo(f"{r.id}  {slug}  {r.status}  {age}s ago  {defuse(r.ask.summary())}")
        if r.ask.reason:
            click.echo(f"    reason: {defuse(r.ask.reason)}")
    click.echo("answer with `bot-bottle grant ID` or `bot-bottle deny ID --reason TEXT`")


@click.command()
@click.argument("request_id")
@click.option("--for", "for_", metavar="DURATION", help="End the grant after e.g. 30m or 2h.")
@click.option("--reply", metavar="TEXT", help="The answer to a question.")
@click.option("--persist", is_flag=True, help="Also write the route into the bottle's "
              "manifest, approved (refused if the manifest changed since its approval).")  # fmt: skip
@click.option("--no-credential", "no_credential", is_flag=True, help="Do not give the route "
              "the credential of the bottle's own route to the same host and port.")  # fmt: skip
def grant(request_id: str, for_: str | None, reply: str | None, persist: bool,
          no_credential: bool) -> None:  # fmt: skip
    """Grant a request: a route goes live in the running bottle within a second."""
    if persist and for_:
        raise click.UsageError("a route written into the manifest has no end: give --for "
                               "or --persist, not both")  # fmt: skip
    store = StateStore()
    seconds = parse_duration(for_) if for_ else 0.0
    g = grant_request(store, request_id, seconds, reply, persist=persist,
                      credential=not no_credential)  # fmt: skip
    found, rec, lender = g.found, g.rec, g.lender
    if g.persisted:
        click.echo(g.persisted)
    what = rec.ask.summary() if rec.ask.kind == "route" else "answered"
    until = f" for {for_}" if for_ else " (persisted)" if persist else " until the bottle ends"
    click.echo(f"granted {rec.id} ({found.slug}): {what}{until if rec.ask.kind == 'route' else ''}")
    if rec.ask.kind == "route" and _status(store, found.slug) == "degraded":
        click.echo(f"  note: {found.slug} is degraded (its egress is down): the route goes "
                   f"live when `bot-bottle resume {found.slug}` restarts it")  # fmt: skip
    if lender is not None:
        click.echo(f"  with the credential of the bottle's route {lender.label} "
                   f"({lender.source.credential}); `--no-credential` grants without it")  # fmt: skip
        if persist:
            click.echo("  note: the route written into the manifest has no `auth:`; add the "
                       "credential there if the next run needs it")  # fmt: skip


@click.command()
@click.argument("request_id")
@click.option("--reason", metavar="TEXT", default="", help="Why; the agent reads it.")
def deny(request_id: str, reason: str) -> None:
    """Deny a request; the agent sees the reason."""
    found, rec = deny_request(StateStore(), request_id, reason)
    click.echo(f"denied {rec.id} ({found.slug})")


def defuse(text: object) -> str:
    """Agent-written text for the operator's terminal: every control or format
    character (escape sequences, bidi overrides, newlines) shown as U+FFFD, so that a
    reason cannot drive the terminal or pass itself off as other output."""
    return "".join(c if c.isprintable() else "\ufffd" for c in str(text))


# The operator's answers as functions: `grant`, `deny`, `requests` and `watch` call these.


def listed_requests(store: StateStore, show_all: bool = False) -> list[tuple[str, AskRecord]]:
    """(bottle slug, request) for every pending request (every request with `show_all`),
    oldest first within each bottle."""
    return [(f.slug, r) for f in _bottles(store) for r in f.requests.all()
            if show_all or r.status == "pending"]  # fmt: skip


@dataclass(frozen=True)
class Granted:
    found: Found
    rec: AskRecord
    lender: Route | None  # the bottle's route whose credential the grant carries
    persisted: str  # `--persist`'s report of what it wrote, else ""


def grant_request(
    store: StateStore,
    request_id: str,
    seconds: float = 0.0,
    reply: str | None = None,
    *,
    persist: bool = False,
    credential: bool = True,
) -> Granted:
    """Grant a pending request (a route for `seconds`, 0 until the bottle ends; a
    question with `reply`); with `persist`, the route is also written into the bottle's
    manifest, first, so a refusal grants nothing. Raises a `BotBottleError` (or
    `UsageError`) and changes nothing when it cannot."""
    found, rec = _find(store, request_id)
    if rec.ask.kind == "question" and not reply:
        raise click.UsageError(f"{rec.id} is a question: answer it with --reply TEXT")
    if rec.ask.kind == "question" and persist:
        raise click.UsageError(f"{rec.id} is a question: there is no route to --persist")
    lender: Route | None = None
    persisted = ""
    if not _running(store, found.slug):
        raise BotBottleError(f"bottle {found.slug} is not running; nothing was granted",
                             "a grant applies to a running bottle only")  # fmt: skip
    with found.requests.deciding(rec.id) as current:
        if current is None or current.status != "pending":
            raise BotBottleError(f"{rec.id} was already {current.status if current else 'removed'}")
        expires = time.time() + seconds if seconds else 0.0
        by = _operator()
        if rec.ask.kind == "route":
            # Still pending, but naming its grantor before the route exists: the egress
            # reads it from here when it records the route going live.
            if persist:
                from bot_bottle.state.persistence import persist_grant

                persisted = persist_grant(store, found.slug, rec.ask, rec.id, by)
            current = found.requests.decide(current, decided_by=by)
            lender = _add_route(found.routes, rec, expires, credential)
        else:
            _audit_answer(store, found, current, "allow", by, reply or "")
        found.requests.decide(current, status="granted", answer=reply or "",
                              decided_by=by, expires=expires)  # fmt: skip
    return Granted(found, rec, lender, persisted)


def deny_request(store: StateStore, request_id: str, reason: str) -> tuple[Found, AskRecord]:
    """Deny a pending request with `reason` (the agent reads it)."""
    found, rec = _find(store, request_id)
    with found.requests.deciding(rec.id) as current:
        if current is None or current.status != "pending":
            raise BotBottleError(f"{rec.id} was already {current.status if current else 'removed'}")
        by = _operator()
        _audit_answer(store, found, current, "deny", by, reason)
        found.requests.decide(current, status="denied", answer=reason, decided_by=by)
    return found, rec


def _add_route(
    routes_path: Path, rec: AskRecord, expires: float, credential: bool = True
) -> Route | None:
    """Add the granted route to the live routes file, replaced whole so the egress
    reloads it (and refuses a broken file, keeping the old routes). With `credential`,
    it carries the credential of the bottle's own route to that host and port, if there
    is one; that route is returned."""
    policy = EgressPolicy.from_json(routes_path.read_text(encoding="utf-8"))
    paths = () if rec.ask.path == "/" else (rec.ask.path,)
    lender = credential_route(policy, rec.ask.host, rec.ask.port) if credential else None
    route = Route(host=rec.ask.host, paths=paths, methods=rec.ask.methods,
                  auth=lender.auth if lender else None,
                  source=RouteSource(f"grant {rec.id}", manifest=False), port=rec.ask.port, expires=expires)  # fmt: skip
    new = replace(policy, routes=(*policy.routes, route))
    tmp = routes_path.with_name(f".{routes_path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new.to_json())
    os.replace(tmp, routes_path)
    return lender


def _audit_answer(
    store: StateStore, found: Found, rec: AskRecord, decision: str, by: str, reason: str
) -> None:
    """Record an answer that changes no route (a deny, a reply to a question) in the
    bottle's audit log, before the answer is given: nothing is answered off the record.
    The writer appends under the same lock as the egress and the git gate, re-reading
    the last line, so the hash chain stays linear. A granted route is recorded by the
    egress when it goes live (`sidecars/egress/grant_audit.py`)."""
    from bot_bottle.sidecars.egress.audit import AuditWriter

    try:
        with AuditWriter(StateStore.audit_log(store.dir(found.slug)), rec.bottle) as audit:
            audit.write({"kind": "answer", "rule": "supervise", "decision": decision,
                         "request": rec.id, "decided_by": by, "reason": reason,
                         "ask": rec.ask.summary()})  # fmt: skip
    except OSError as e:
        raise BotBottleError(f"{rec.id}: the bottle's audit log cannot take the answer "
                             f"({e.strerror or e}); nothing was answered",
                             "free disk space, or check the state directory") from e  # fmt: skip


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
