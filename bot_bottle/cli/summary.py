"""The preflight summary: what a launch will do, shown before anything starts.

Names only: token slots and the variables they come from, never a value.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.review import describe, loud_lines, protected_paths


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


def render_plan(plan: BottlePlan, backend: str = "") -> Group:
    """The summary; `backend` is the one the launch resolved (else the manifest's)."""
    d = plan_dict(plan)
    head = Text.assemble(
        ("agent ", "bold"), (plan.agent, "cyan"), "  bottle ", (plan.bottle, "cyan"),
        "  provider ", (plan.provider, "cyan"), "  backend ", (backend or plan.backend, "cyan"),
    )  # fmt: skip
    ws = plan.workspace
    workspace = Text(f"workspace: {ws.mode}" + (f" {ws.path}" if ws.path else ""))
    res = plan.resources
    limits = [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
              for k, v in (("cpus", res.cpus), ("memory", res.memory)) if v is not None]  # fmt: skip
    resources = Text(
        "resources: " + (", ".join(limits) or "no limits (the host's CPUs and memory)")
    )
    routes = Table(title="egress routes", title_justify="left", expand=False)
    for col in ("host", "paths", "methods", "auth", "source"):
        routes.add_column(col)
    for r in d["routes"]:
        auth = r["auth"]
        auth_text = f"{auth['scheme']} {auth['slot']} <- ${auth['from']}" if auth else "-"
        if r["tls_passthrough"]:
            auth_text = "passthrough (no inspection, DLP or injection)"
        host = r["host"]
        if (r["scheme"], r["port"]) != ("https", 443):  # cleartext or an unusual port shows
            host = f"{r['scheme']}://{host}:{r['port']}"
        routes.add_row(
            host, " ".join(r["paths"]) or "*", " ".join(r["methods"]) or "*", auth_text,
            r["source"],
        )  # fmt: skip
    if not d["routes"]:
        routes.add_row("(none: no network)", "", "", "", "")
    extras = []
    if d["hosts"]:
        extras.append(Text("hosts: " + ", ".join(f"{k}={v}" for k, v in d["hosts"].items())))
    if d["ssrf_ip_allowlist"]:
        extras.append(Text("ssrf allowlist: " + ", ".join(d["ssrf_ip_allowlist"])))
    if d["upstream_ca"]:
        extras.append(Text(f"upstream CA: {d['upstream_ca']}"))
    dlp = d["dlp"]
    extras.append(
        Text(
            "dlp: " + ("on" if dlp["enabled"] else "OFF")
            + (f", {dlp['patterns']} extra patterns" if dlp["patterns"] else "")
            + (f", protecting ${', $'.join(dlp['protected_env'])}" if dlp["protected_env"] else "")
        )
    )  # fmt: skip
    git = d["git"]
    who = ", ".join(f"{k}={v['value']} ({v['source']})" for k, v in git["user"].items())
    extras.append(Text(f"git identity: {who}"))
    for r in git["remotes"]:
        prot = f" protected: {' '.join(r['protected_refs'])}" if r["protected_refs"] else ""
        token = f", token <- ${r['token_from']}" if r["token_from"] else ""
        extras.append(Text(f"git remote {r['name']} -> {r['url']} (via git gate{token}){prot}"))
    env = ", ".join(d["env"]) or "-"
    extras.append(
        Text(f"env: {env}" + (f" (+{d['hidden_env']} hidden)" if d["hidden_env"] else ""))
    )
    ro = protected_paths(plan)
    if ro:
        rel = [os.path.relpath(p, plan.workspace.path) for p in ro]
        extras.append(Text("read-only in the bottle (the launch read them): " + ", ".join(rel)))
    for ln in loud_lines(describe(plan, (), {})):
        extras.append(Text(f"! {ln.key}: {ln.value}: {ln.loud}", style="bold yellow"))
    if plan.supervise:
        extras.append(Text("supervise: on: the agent may ask for routes and answers"
                           " (`bot-bottle requests`, `grant`, `deny`)"))  # fmt: skip
    return Group(head, workspace, resources, routes, *extras)
