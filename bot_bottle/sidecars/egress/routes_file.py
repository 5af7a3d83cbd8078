"""The routes file on disk, reloaded when it is atomically replaced.

`current()` is called on every request; it stats the file at most every
`interval` seconds and swaps in a new `Gate` when inode, mtime or size changed, or
when a granted route's time ran out (`Route.expires`).
An invalid replacement is refused: the old gate stays and `on_reload` hears why.
`on_routes` hears the routes before and after every change (granted routes are audited
from it: `grant_audit.GrantAudit`).
Open connections keep flowing; only new decisions see the new routes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from bot_bottle.policy.egress_policy import EgressPolicy, Route
from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.gate import Gate

ReloadListener = Callable[[bool, str], None]
RoutesListener = Callable[[tuple[Route, ...], tuple[Route, ...]], None]


def _signature(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def load_gate(path: Path, credentials: Credentials, now: float | None = None) -> Gate:
    """Parse a routes file and bind it, without the routes whose grant has ended; raises
    ValueError (bad file) or CredentialError."""
    policy = EgressPolicy.from_json(path.read_text(encoding="utf-8"))
    credentials.require(policy)
    return Gate.build(policy.without_expired(time.time() if now is None else now), credentials)


def _next_expiry(gate: Gate) -> float:
    ends = [r.expires for r in gate.policy.routes if r.expires > 0]
    return min(ends) if ends else float("inf")


class RoutesFile:
    """Holds the live `Gate` for one routes file and reloads it on replacement."""

    def __init__(
        self,
        path: Path,
        credentials: Credentials,
        on_reload: ReloadListener | None = None,
        interval: float = 0.5,
    ) -> None:
        self.path = path
        self.credentials = credentials
        self.on_reload = on_reload
        self.on_routes: RoutesListener | None = None
        self.interval = interval
        self._sig = _signature(path)
        self._gate = load_gate(path, credentials)
        self._expiry = _next_expiry(self._gate)
        self._next_check = time.monotonic() + interval

    def current(self) -> Gate:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.interval
            self._maybe_reload()
        if time.time() >= self._expiry:  # a granted route ended: drop it now, not later
            self._swap(Gate.build(self._gate.policy.without_expired(time.time()),
                                  self.credentials))  # fmt: skip
            if self.on_reload:
                self.on_reload(True, "a granted route expired")
        return self._gate

    def reload_now(self) -> None:
        """Check the file now, not at the next interval: a poll that tells the agent
        its route was granted must not race the agent's next request."""
        self._next_check = time.monotonic() + self.interval
        self._maybe_reload()

    def _maybe_reload(self) -> None:
        try:
            sig = _signature(self.path)
        except OSError as e:
            self._refuse(sig=None, why=f"routes file unreadable: {e.strerror}")
            return
        if sig == self._sig:
            return
        try:
            gate = load_gate(self.path, self.credentials)
        except Exception as e:  # ValueError, CredentialError, OSError: all refuse
            self._refuse(sig, str(e))
            return
        self._sig = sig
        self._swap(gate)
        if self.on_reload:
            self.on_reload(True, f"routes reloaded ({len(gate.policy.routes)} routes)")

    def _swap(self, gate: Gate) -> None:
        old = self._gate.policy.routes
        self._gate = gate
        self._expiry = _next_expiry(gate)
        if self.on_routes:
            self.on_routes(old, gate.policy.routes)

    def _refuse(self, sig: tuple[int, int, int] | None, why: str) -> None:
        # Remember the refused signature so one bad file is reported once, not per request.
        if sig is not None:
            self._sig = sig
        if self.on_reload:
            self.on_reload(False, f"reload refused, old routes stay: {why}")
