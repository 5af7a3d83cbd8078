"""Audit records for granted routes, written by the egress that applies them.

`bot-bottle grant` only writes the routes file and the request record; the egress is
the one that knows when a granted route starts and stops matching, so it writes the
record then: `event: live` when a reload brings in a route whose source is
`grant r-…`, `expired` when its `--for` ran out, `removed` when the file lost it
otherwise. The operator who granted it is read from the request record (`decided_by`),
which sits in the sidecar's own directory, out of the agent's reach.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bot_bottle.policy.egress_policy import Route
from bot_bottle.state.requests import ID_RE, RequestDir

GRANT_PREFIX = "grant "

Write = Callable[[Mapping[str, Any]], object]


def granted(routes: Iterable[Route]) -> dict[str, Route]:
    """The granted routes among `routes`, by request id."""
    out = {}
    for r in routes:
        source = str(r.source)
        rid = source[len(GRANT_PREFIX) :]
        if source.startswith(GRANT_PREFIX) and ID_RE.match(rid):
            out[rid] = r
    return out


class GrantAudit:
    """Compares the routes before and after each change and records the grants that
    came and went."""

    def __init__(self, requests: RequestDir, write: Write) -> None:
        self.requests = requests
        self.write = write

    def changed(self, old: Iterable[Route], new: Iterable[Route], now: float | None = None) -> None:
        now = time.time() if now is None else now
        before, after = granted(old), granted(new)
        for rid in after.keys() - before.keys():
            self._record(rid, after[rid], "live")
        for rid in before.keys() - after.keys():
            route = before[rid]
            self._record(rid, route, "expired" if 0 < route.expires <= now else "removed")

    def _record(self, rid: str, route: Route, event: str) -> None:
        rec = self.requests.get(rid)
        by = rec.decided_by if rec is not None and rec.decided_by else "unknown"
        path = route.paths[0] if route.paths else "/"
        what = {
            "live": f"route granted by {by} to {rid} is live",
            "expired": f"route granted by {by} to {rid} expired",
            "removed": f"route granted by {by} to {rid} was removed from the routes file",
        }[event]
        try:
            self.write({
                "kind": "grant", "event": event, "rule": "supervise",
                "decision": "allow" if event == "live" else "end",
                "request": rid, "decided_by": by, "route": route.label,
                "host": route.host, "port": route.port, "path": path,
                "methods": list(route.methods), "expires": route.expires, "reason": what,
            })  # fmt: skip
        except OSError as e:  # the writer remembers: later requests are refused
            print(f"egress: audit record not written ({e})", file=sys.stderr, flush=True)
