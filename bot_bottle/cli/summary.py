"""The preflight summary: what a launch will do, shown before anything starts.

Names only: token slots and the variables they come from, never a value.

Two renderings of the same `Summary`: rich (`render_plan`, on a terminal) and plain text
(`plain_plan`, for a pipe or a log file, where rich's colours are dropped anyway and its
import and layout would be a tenth of `run`'s start-up).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot_bottle.cli import output
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.review import describe, loud_lines, protected_paths

if TYPE_CHECKING:
    from rich.console import Group

ROUTE_COLUMNS = ("host", "paths", "methods", "auth", "source")


@dataclass(frozen=True)
class Summary:
    """The summary's content: the heading's (label, value) pairs, lines before the
    routes table, its rows, and lines after it (`loud`: ones to make stand out)."""

    head: tuple[tuple[str, str], ...]
    before: tuple[str, ...]
    routes: tuple[tuple[str, ...], ...]
    after: tuple[str, ...]
    loud: tuple[str, ...]


def plan_dict(plan: BottlePlan) -> dict[str, Any]:
    """The summary as plain data, for `--json`."""
    slot_ref = {t.slot: t.ref for t in plan.token_slots}
    visible = plan.visible_env_names()
    return {
        "agent": plan.agent,
        "bottle": plan.bottle,
        "provider": plan.provider,
        "backend": plan.backend,
        "image": plan.image,
        "argv": list(plan.argv),
        "workspace": {"mode": plan.workspace.mode, "path": plan.workspace.path},
        "resources": {"cpus": plan.resources.cpus, "memory": plan.resources.memory},
        "routes": [
            {
                "host": r.host,
                "scheme": r.scheme,
                "port": r.port,
                "paths": list(r.paths),
                "methods": list(r.methods),
                "auth": (
                    {"scheme": r.auth.scheme, "slot": r.auth.slot, "from": slot_ref[r.auth.slot]}
                    if r.auth
                    else None
                ),
                "tls_passthrough": r.tls_passthrough,
                "source": str(r.source),
            }
            for r in plan.egress.routes
        ],
        "hosts": dict(plan.egress.hosts),
        "ssrf_ip_allowlist": list(plan.egress.ssrf_ip_allowlist),
        "upstream_ca": plan.egress.upstream_ca,
        "dlp": {
            "enabled": plan.egress.dlp.enabled,
            "patterns": len(plan.egress.dlp.patterns),
            "protected_env": [t.ref for t in plan.protect_slots],
        },
        "git": {
            "user": {
                k: {"value": v.value, "source": v.source}
                for k, v in (("name", plan.git_identity.name), ("email", plan.git_identity.email))
                if v is not None
            },
            "remotes": [
                {"name": r.name, "url": r.url, "protected_refs": list(r.protected_refs),
                 "allowed_refs": list(r.allowed_refs), "token_from": r.token_ref or None}
                for r in plan.git_remotes
            ],
        },
        "env": visible,
        "hidden_env": len(plan.env) - len(visible),
        "skills": list(plan.skills),
        "supervise": "on" if plan.supervise else "off",
        "read_only_in_bottle": list(protected_paths(plan)),
        "loud": [{"field": ln.key, "value": ln.value, "why": ln.loud}
                 for ln in loud_lines(describe(plan, (), {}))],
    }  # fmt: skip


def summarize(plan: BottlePlan, backend: str = "") -> Summary:
    """The summary; `backend` is the one the launch resolved (else the manifest's)."""
    d = plan_dict(plan)
    head = (("agent", plan.agent), ("bottle", plan.bottle), ("provider", plan.provider),
            ("backend", backend or plan.backend))  # fmt: skip
    ws = plan.workspace
    workspace = f"workspace: {ws.mode}" + (f" {ws.path}" if ws.path else "")
    res = plan.resources
    limits = [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
              for k, v in (("cpus", res.cpus), ("memory", res.memory)) if v is not None]  # fmt: skip
    resources = "resources: " + (", ".join(limits) or "no limits (the host's CPUs and memory)")
    rows = []
    for r in d["routes"]:
        auth = r["auth"]
        auth_text = f"{auth['scheme']} {auth['slot']} <- ${auth['from']}" if auth else "-"
        if r["tls_passthrough"]:
            auth_text = "passthrough (no inspection, DLP or injection)"
        host = r["host"]
        if (r["scheme"], r["port"]) != ("https", 443):  # cleartext or an unusual port shows
            host = f"{r['scheme']}://{host}:{r['port']}"
        rows.append((host, " ".join(r["paths"]) or "*", " ".join(r["methods"]) or "*",
                     auth_text, r["source"]))  # fmt: skip
    if not d["routes"]:
        rows.append(("(none: no network)", "", "", "", ""))
    extras = []
    if d["hosts"]:
        extras.append("hosts: " + ", ".join(f"{k}={v}" for k, v in d["hosts"].items()))
    if d["ssrf_ip_allowlist"]:
        extras.append("ssrf allowlist: " + ", ".join(d["ssrf_ip_allowlist"]))
    if d["upstream_ca"]:
        extras.append(f"upstream CA: {d['upstream_ca']}")
    dlp = d["dlp"]
    extras.append(
        "dlp: " + ("on" if dlp["enabled"] else "OFF")
        + (f", {dlp['patterns']} extra patterns" if dlp["patterns"] else "")
        + (f", protecting ${', $'.join(dlp['protected_env'])}" if dlp["protected_env"] else "")
    )  # fmt: skip
    git = d["git"]
    who = ", ".join(f"{k}={v['value']} ({v['source']})" for k, v in git["user"].items())
    extras.append(f"git identity: {who}")
    for r in git["remotes"]:
        prot = f" protected: {' '.join(r['protected_refs'])}" if r["protected_refs"] else ""
        token = f", token <- ${r['token_from']}" if r["token_from"] else ""
        extras.append(f"git remote {r['name']} -> {r['url']} (via git gate{token}){prot}")
    env = ", ".join(d["env"]) or "-"
    extras.append(f"env: {env}" + (f" (+{d['hidden_env']} hidden)" if d["hidden_env"] else ""))
    ro = protected_paths(plan)
    if ro:
        rel = [os.path.relpath(p, plan.workspace.path) for p in ro]
        extras.append("read-only in the bottle (the launch read them): " + ", ".join(rel))
    loud = tuple(f"! {ln.key}: {ln.value}: {ln.loud}" for ln in loud_lines(describe(plan, (), {})))
    supervise: tuple[str, ...] = ()
    if plan.supervise:
        supervise = ("supervise: on: the agent may ask for routes and answers"
                     " (`bot-bottle requests`, `grant`, `deny`)",)  # fmt: skip
    return Summary(head, (workspace, resources), tuple(rows), tuple(extras), (*loud, *supervise))


def render_plan(plan: BottlePlan, backend: str = "") -> Group:
    """The summary for a terminal (rich)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = summarize(plan, backend)
    head = Text.assemble(*[part for i, (label, value) in enumerate(s.head)
                           for part in (("  " if i else "") + label + " ", (value, "cyan"))])  # fmt: skip
    head.stylize("bold", 0, len(s.head[0][0]))
    routes = Table(title="egress routes", title_justify="left", expand=False)
    for col in ROUTE_COLUMNS:
        routes.add_column(col)
    for row in s.routes:
        routes.add_row(*row)
    lines = [Text(line) for line in s.after]
    lines += [Text(line, style="bold yellow" if line.startswith("! ") else "") for line in s.loud]
    return Group(head, *(Text(line) for line in s.before), routes, *lines)


def plain_plan(plan: BottlePlan, backend: str = "") -> str:
    """The same summary as plain text, the routes table in aligned columns."""
    s = summarize(plan, backend)
    widths = [max(len(row[i]) for row in (ROUTE_COLUMNS, *s.routes)) for i in range(5)]
    table = ["egress routes"] + [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (ROUTE_COLUMNS, *s.routes)
    ]
    head = "  ".join(f"{label} {value}" for label, value in s.head)
    return "\n".join([head, *s.before, *table, *s.after, *s.loud])


def show_plan(plan: BottlePlan, backend: str, notes: tuple[str, ...] = ()) -> None:
    """The summary on stderr before a launch, with the preflight's `notes` (what the
    backend says without refusing: an image to build first, no hardware acceleration):
    rich on a terminal, plain text otherwise."""
    if sys.stderr.isatty():
        console = output.console(stderr=True)
        console.print(render_plan(plan, backend))
        console.print(f"backend: {backend}")
        for note in notes:
            console.print(f"note: {note}", style="yellow", markup=False)
        return
    lines = [plain_plan(plan, backend), f"backend: {backend}", *(f"note: {n}" for n in notes)]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
