"""What `bot-bottle watch` shows: a snapshot of the bottles, their recent requests and
denials, and the pending requests, rendered for rich at any terminal width.

Everything an agent wrote (reasons, questions, hosts, paths) is shown with control
characters replaced: an agent must not drive the operator's terminal with escape
sequences through a reason string.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

from bot_bottle.cli.egress_cmds import _shown
from bot_bottle.cli.supervise_cmds import defuse, listed_requests
from bot_bottle.state.requests import AskRecord, RequestDir
from bot_bottle.state.store import StateStore

RECENT = 3  # requests and denials shown per bottle
TAIL_BYTES = 64 * 1024  # how much of each audit log is read per refresh
KEYS = "↑↓/1-9 select · g grant · t grant for… · d deny · q quit"
# Characters of one agent-written field shown: the screen crops what does not fit, so
# a 4,000-character question or a 60 KiB path would push the other requests, the prompt
# being typed and the outcome of a grant out of sight. `bot-bottle requests` shows all.
MAX_SHOWN = 240


def clean(text: object) -> str:
    """Agent-written `text` for the screen: defused, and cut to `MAX_SHOWN`."""
    shown = defuse(text)
    if len(shown) <= MAX_SHOWN:
        return shown
    return f"{shown[:MAX_SHOWN]}… ({len(shown) - MAX_SHOWN} more characters)"


@dataclass(frozen=True)
class BottleRow:
    slug: str
    status: str
    backend: str
    asks: tuple[AskRecord, ...]  # the most recent requests, newest last
    denials: tuple[dict[str, Any], ...]  # the most recent denials, newest last
    sent: tuple[dict[str, Any], ...] = ()  # the most recent requests let through


@dataclass(frozen=True)
class Snapshot:
    bottles: tuple[BottleRow, ...]
    pending: tuple[tuple[str, AskRecord], ...]
    taken: float


def audit_tail(path: Path, limit: int = TAIL_BYTES) -> list[dict[str, Any]]:
    """The complete records in the last `limit` bytes of an audit log."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > limit:
        lines = lines[1:]  # the first may be cut
    out = []
    for line in lines[:-1]:  # the last is empty, or still being written
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def collect(store: StateStore) -> Snapshot:
    from bot_bottle.launch import status_of

    rows = []
    for meta in store.all():
        state = store.dir(meta.slug)
        asks = RequestDir(state / "sidecars" / "egress" / "requests", meta.bottle).all()
        tail = audit_tail(StateStore.audit_log(state))
        denials = [r for r in tail if _shown(r, denied=True, everything=False)]
        sent = [r for r in tail if r.get("kind", "request") == "request"
                and r.get("decision") == "allow" and r.get("rule") != "supervise"]  # fmt: skip
        rows.append(BottleRow(meta.slug, status_of(meta), meta.backend, tuple(asks[-RECENT:]),
                              tuple(denials[-RECENT:]), tuple(sent[-RECENT:])))  # fmt: skip
    return Snapshot(tuple(rows), tuple(listed_requests(store)), time.time())


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    return f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def _request(rec: dict[str, Any]) -> str:
    ts = str(rec.get("ts", ""))[11:19]
    return f"{ts} {rec.get('method', '')} {rec.get('host', '')}{rec.get('path', '')}".strip()


def _denial(rec: dict[str, Any]) -> str:
    if rec.get("kind") == "answer":
        ts = str(rec.get("ts", ""))[11:19]
        return f"{ts} operator denied {rec.get('request', '')}: {rec.get('reason', '')}"
    return f"{_request(rec)} [{rec.get('rule', '')}]"


def _indent(text: Text, n: int) -> RenderableType:
    """`text` indented by `n`, wrapped lines too (a narrow terminal wraps a lot)."""
    return Padding(text, (0, 0, 0, n))


STATUS_STYLE = {"running": "green", "degraded": "red", "starting": "yellow"}
ASK_STYLE = {"pending": "yellow", "granted": "green", "denied": "red"}


def render(snap: Snapshot, selected: int, footer: str = "") -> RenderableType:
    """The whole screen. `selected` indexes `snap.pending`; `footer` is the prompt
    being typed or the last action's outcome."""
    now = snap.taken
    clock = datetime.fromtimestamp(now).strftime("%H:%M:%S")
    parts: list[RenderableType] = [
        Text.assemble(("bot-bottle watch", "bold"), f"  {clock}"),
        Text(KEYS, style="dim"),
        Text(""),
        Text(f"Pending requests ({len(snap.pending)})", style="bold"),
    ]
    if not snap.pending:
        parts.append(Text("  none", style="dim"))
    for i, (slug, r) in enumerate(snap.pending):
        mark = ">" if i == selected else " "
        style = "reverse" if i == selected else ""
        parts.append(Text(f"{mark}{i + 1} {r.id} {slug} {_age(now - r.created)}", style=style))
        parts.append(_indent(Text(clean(r.ask.summary())), 3))
        if r.ask.reason:
            parts.append(_indent(Text(f"reason: {clean(r.ask.reason)}", style="dim"), 3))
    parts += [Text(""), Text(f"Bottles ({len(snap.bottles)})", style="bold")]
    if not snap.bottles:
        parts.append(Text("  none", style="dim"))
    for b in snap.bottles:
        parts.append(Text.assemble(f"{b.slug} ", (b.status, STATUS_STYLE.get(b.status, "")),
                                   f" {b.backend}"))  # fmt: skip
        for r in b.asks:
            parts.append(_indent(Text.assemble("ask ", (r.status, ASK_STYLE.get(r.status, "")),
                                               f" {r.id} {clean(r.ask.summary())}"), 2))  # fmt: skip
        for x in b.sent:
            line = f"sent {_request(x)} {x.get('status', '')}"
            parts.append(_indent(Text(clean(line), style="dim"), 2))
        for d in b.denials:
            parts.append(_indent(Text(f"denied {clean(_denial(d))}", style="red"), 2))
    if footer:
        # Not cut: it holds what the operator is typing (agent text in it is bounded).
        parts += [Text(""), Text(defuse(footer), style="bold")]
    return Group(*parts)
