"""Why a bottle's attached session ended, as the person at its terminal is told.

A session ends because the agent exited (its own code, or a signal), because someone
ran `bot-bottle stop` or `rm` on it from another terminal (they leave a `StopRequest` in
the bottle's metadata before they signal the launcher), or while a sidecar was dead.
The launcher turns what it saw into one `Ending`: a sentence and the exit code of `run`.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot_bottle.errors import StateError
from bot_bottle.state.store import StateStore

STOP_REQUEST = "stop_request"
"""The metadata `extra` key a `stop`/`rm` from another terminal writes."""

STOPPED_CODE = 128 + signal.SIGTERM
"""`run`'s exit code for a bottle stopped from outside: what any program ended by
SIGTERM reports, on every backend (Docker's exec client itself may exit 0)."""


@dataclass(frozen=True)
class StopRequest:
    """Who asked a running bottle to stop: the command (`stop`, `rm`) and its pid."""

    by: str
    pid: int
    at: str

    @classmethod
    def now(cls, by: str) -> StopRequest:
        return cls(by, os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "pid": self.pid, "at": self.at}

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> StopRequest | None:
        raw = extra.get(STOP_REQUEST)
        if not isinstance(raw, dict):
            return None
        return cls(str(raw.get("by", "stop")), int(raw.get("pid", 0)), str(raw.get("at", "")))


@dataclass(frozen=True)
class Ending:
    """How a session ended: `reason` completes "bottle SLUG ended: ...", `exit_code` is
    what `run`/`resume` exit with, `agent_code` the agent's own code where it had one."""

    slug: str
    reason: str
    exit_code: int
    agent_code: int | None

    def sentence(self) -> str:
        return f"bottle {self.slug} ended: {self.reason}"


def _signal_name(code: int) -> str | None:
    """`SIGKILL` for 137: a code past 128 is how shells and runtimes report a signal."""
    if 128 < code < 128 + 65:
        try:
            return signal.Signals(code - 128).name
        except ValueError:
            return None
    return None


def explain(
    slug: str,
    agent_code: int,
    request: StopRequest | None,
    dead_sidecars: tuple[str, ...] = (),
    *,
    started: bool = True,
) -> Ending:
    """The `Ending` of a session whose attach returned `agent_code`, given the stop
    request found in its metadata and the sidecars found dead when it returned
    (`started=False`: stopped before the agent ran)."""
    if request is not None:
        what = "the agent was sent SIGTERM" if started else "while it was starting"
        return Ending(
            slug,
            f"stopped by `bot-bottle {request.by}` from another terminal "
            f"(exit code {STOPPED_CODE}: {what})",
            STOPPED_CODE,
            None,
        )
    name = _signal_name(agent_code)
    reason = f"the agent exited with code {agent_code}" + (f" ({name})" if name else "")
    if dead_sidecars:
        which = " and ".join(dead_sidecars)
        reason += (
            f"; the {which} sidecar had died before it, so the agent had no network "
            "from then on (see `bot-bottle logs " + slug + "`)"
        )
    return Ending(slug, reason, agent_code, agent_code)


def record_ending(
    store: StateStore, slug: str, agent_code: int, dead_sidecars: tuple[str, ...]
) -> Ending:
    """`explain` with the stop request found in `slug`'s metadata, the reason recorded
    there (`info`, and the metadata a removed bottle leaves, carry it)."""
    request = StopRequest.from_extra(store.load(slug).extra)
    ending = explain(slug, agent_code, request, dead_sidecars)
    store.update(slug, extra={"ended": ending.reason})
    return ending


def stopped_early(store: StateStore, slug: str) -> Ending | None:
    """The `Ending` of a launch stopped from outside before its agent ran, if it was."""
    try:
        request = StopRequest.from_extra(store.load(slug).extra)
    except StateError:
        return None
    return None if request is None else explain(slug, 0, request, started=False)
