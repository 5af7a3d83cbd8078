"""The supervise endpoint, answered by the bottle's own egress (nothing goes upstream).

    POST http://supervise.bot-bottle.internal/v1/ask        {"kind": "route", ...}
        201 {"id": "r-…", "status": "pending", "poll": "/v1/ask/r-…"}
    GET  http://supervise.bot-bottle.internal/v1/ask/ID[?wait=SECONDS]
        200 {"id", "status": pending|granted|denied, "answer", "expires", "ask"}

Only with `supervise: true`; otherwise the host is like any other with no route. The
addon has already checked the request's syntax and DLP-scanned its URL, headers and
body (a secret must not reach the operator's files either) before `answer` runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from bot_bottle.policy.supervise import API_PREFIX, MAX_WAIT, RateLimit, parse_ask
from bot_bottle.state.requests import RequestDir

POLL_INTERVAL = 0.25
# Polls held waiting at once. A poll's wait outlives its connection (mitmproxy lets a
# hook run on after the client goes), so without a bound each poll sent and dropped
# would cost a file read four times a second for a minute: past this many, a poll
# answers at once.
MAX_WAITING = 16


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    summary: str  # for the audit log

    def content(self) -> bytes:
        return json.dumps(self.body, sort_keys=True).encode() + b"\n"


class SuperviseEndpoint:
    def __init__(
        self,
        requests: RequestDir,
        limit: RateLimit | None = None,
        on_granted: Callable[[], None] | None = None,
    ) -> None:
        self.requests = requests
        self.limit = limit or RateLimit()
        # Called before a poll reports "granted" (the server reloads the routes there):
        # the agent's next request, sent the moment it reads the answer, sees the route.
        self.on_granted = on_granted
        self._waiting = 0

    async def answer(self, method: str, path: str, body: bytes) -> Reply:
        route, _, query = path.partition("?")
        if route == API_PREFIX:
            if method != "POST":
                return _error(405, f"{API_PREFIX} takes POST")
            return self._ask(body)
        if route.startswith(API_PREFIX + "/"):
            if method != "GET":
                return _error(405, "poll with GET")
            return await self._poll(route[len(API_PREFIX) + 1 :], query)
        return _error(404, f"the supervise endpoint serves {API_PREFIX} only")

    def _ask(self, body: bytes) -> Reply:
        if not self.limit.allow(time.monotonic()):
            return _error(429, "too many requests to the operator; wait before asking again")
        try:
            ask = parse_ask(body)
            rec = self.requests.create(ask)
        except ValueError as e:
            status = 429 if "waiting" in str(e) else 400
            return _error(status, str(e))
        return Reply(201, {"id": rec.id, "status": rec.status, "poll": f"{API_PREFIX}/{rec.id}"},
                     f"asked {rec.id}: {ask.summary()}")  # fmt: skip

    async def _poll(self, rid: str, query: str) -> Reply:
        try:
            wait = float(parse_qs(query).get("wait", ["0"])[0])
        except ValueError:
            return _error(400, "wait: a number of seconds")
        if not math.isfinite(wait):
            # NaN compares false with every deadline: the poll would never end.
            return _error(400, "wait: a number of seconds")
        if self._waiting >= MAX_WAITING:
            wait = 0.0
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        self._waiting += 1
        try:
            while True:
                rec = self.requests.get(rid)
                if rec is None:
                    return _error(404, f"no request {rid[:20]!r} in this bottle")
                if rec.status != "pending" or time.monotonic() >= deadline:
                    if rec.status == "granted" and self.on_granted is not None:
                        self.on_granted()
                    return Reply(200, rec.view(), f"polled {rec.id}: {rec.status}")
                await asyncio.sleep(POLL_INTERVAL)
        finally:
            self._waiting -= 1


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message}, message)
