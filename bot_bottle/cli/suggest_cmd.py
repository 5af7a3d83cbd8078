"""`bot-bottle suggest SLUG`: manifest routes for what a bottle was denied, to review
and paste. It only prints, unless `--persist` (asked y/N after the routes are shown)
writes them into the bottle's manifest as `grant --persist` does (`state.persistence`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from bot_bottle.cli.options import SLUG
from bot_bottle.errors import StateError
from bot_bottle.policy.suggestion import Suggestion, denial_of, suggest
from bot_bottle.sidecars.egress.audit import read_audit


def render(suggestions: list[Suggestion], bottle: str, source: str) -> str:
    """YAML for `bottles.<bottle>.egress.routes`, each route after comments saying
    what it would have allowed (block style, quoted by the YAML library)."""
    where = f"bottles.{bottle}.egress.routes" if bottle else "the bottle's egress.routes"
    lines = [
        f"# Routes that would have allowed what {source} was denied.",
        f"# Nothing is allowed until you paste them under {where}: review each",
        "# (a route opens that host to the agent), then approve with `bot-bottle trust`.",
    ]
    for s in suggestions:
        lines.append("")
        if s.extends:
            lines.append(f"# {s.host} already has a route ({'; '.join(s.extends)}):")
            lines.append("# widen it instead, or keep this one (it injects no credential).")
        shown = s.asked[:10]
        more = f" (+{len(s.asked) - len(shown)} more)" if len(s.asked) > len(shown) else ""
        lines.append(f"# denied: {', '.join(shown)}{more}")
        text = yaml.safe_dump([s.as_route()], default_flow_style=False, sort_keys=False)
        lines.extend(text.rstrip("\n").split("\n"))
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("slug", required=False, type=SLUG)
@click.option("--file", "file_", type=click.Path(dir_okay=False), help="Audit file to read.")
@click.option("--all", "everything", is_flag=True, help="Include the agent CLI's expected "
              "background denials.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The routes as JSON.")
@click.option("--persist", is_flag=True, help="Write them into the bottle's manifest, "
              "approved (refused if it changed since its approval).")  # fmt: skip
@click.option("-y", "--yes", is_flag=True, help="With --persist: do not ask.")
def suggest_cmd(slug: str | None, file_: str | None, everything: bool, as_json: bool,
                persist: bool, yes: bool) -> None:  # fmt: skip
    """Print manifest routes (YAML) for what bottle SLUG was denied: grouped by host,
    with the narrowest path prefixes and the methods that cover what was asked.
    Nothing is applied; paste what you accept into the manifest and `trust` it."""
    if persist and not slug:
        raise click.UsageError("--persist writes into a bottle's manifest: give its SLUG")
    if file_:
        path = Path(file_)
    elif slug:
        from bot_bottle.state.store import StateStore

        path = StateStore().find_audit_log(slug)
    else:
        raise click.UsageError("give a bottle SLUG or --file PATH")
    if not path.exists():
        raise StateError(f"no audit log at {path}", "see `bot-bottle ls` for bottle names")
    bottle = ""
    denials = []
    for rec in read_audit(path):
        d = denial_of(rec, include_expected=everything)
        if d is not None:
            denials.append(d)
            bottle = bottle or str(rec.get("bottle", ""))
    suggestions = suggest(denials)
    if as_json:
        click.echo(json.dumps([s.as_route() for s in suggestions], indent=2))
    elif not suggestions:
        hidden = "" if everything else " (expected background denials left out: --all)"
        click.echo(f"no denials a route would fix in {path}{hidden}")
    else:
        click.echo(render(suggestions, bottle, f"bottle {slug}" if slug else str(path)), nl=False)
    if persist and slug and suggestions:
        _persist(slug, suggestions, yes)


def _persist(slug: str, suggestions: list[Suggestion], yes: bool) -> None:
    from pydantic import ValidationError

    from bot_bottle.manifest.model import RouteSpec
    from bot_bottle.state.persistence import persist_for_bottle
    from bot_bottle.state.store import StateStore

    store = StateStore()
    meta = store.load_any(slug)
    question = (
        f"Write these routes into {meta.manifest_path} (bottle {meta.bottle}) and approve it?"
    )
    if not yes and not click.confirm(question, default=False, err=True):
        sys.exit(1)
    routes = []
    for s in suggestions:
        try:  # the audit log's methods come from the agent: an invented one is no route
            routes.append(RouteSpec.model_validate(s.as_route()))
        except ValidationError:
            click.echo(f"left out (not a valid route): {s.as_route()}", err=True)
    why = f"suggested from the denials of {slug} (bot-bottle suggest --persist)"
    click.echo(persist_for_bottle(store, slug, routes, why).report())
