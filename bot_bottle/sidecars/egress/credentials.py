"""Credential values held by the sidecar, read only from its own environment.

The routes file names slots (`EGRESS_TOKEN_0`, `EGRESS_PROTECT_0`); the values live
here and nowhere else. `repr` never shows a value, so a stray log line cannot leak one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot_bottle.errors import CredentialError
from bot_bottle.policy.egress_policy import SLOT_RE, EgressPolicy, RouteAuth


@dataclass(frozen=True)
class Credentials:
    """Slot name -> value for every `EGRESS_TOKEN_n` / `EGRESS_PROTECT_n` in the env."""

    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        return cls({k: v for k, v in env.items() if SLOT_RE.match(k) and v})

    def __repr__(self) -> str:
        return f"Credentials(slots={sorted(self.values)})"

    def require(self, policy: EgressPolicy) -> None:
        """Fail before serving if a slot the routes file uses has no value."""
        missing = [s for s in policy.token_slots() if s not in self.values]
        if missing:
            raise CredentialError(
                f"egress sidecar env lacks {', '.join(missing)}",
                "the launcher must pass every token slot named in the routes file",
            )

    def dlp_exact(self, policy: EgressPolicy) -> dict[str, str]:
        """Values DLP must never let out: every token this sidecar holds plus protected ones."""
        slots = [s for s in self.values if s.startswith("EGRESS_TOKEN_")]
        slots += [s for s in policy.dlp.protect_slots if s in self.values]
        return {s: self.values[s] for s in sorted(set(slots))}

    def header_for(self, auth: RouteAuth) -> tuple[str, str] | None:
        """The header to inject for a route's auth, or None if its slot has no value."""
        value = self.values.get(auth.slot)
        if value is None:
            return None
        if auth.scheme == "Bearer":
            return "Authorization", f"Bearer {value}"
        if auth.scheme == "Basic":
            return "Authorization", "Basic " + base64.b64encode(value.encode()).decode()
        return auth.header, value
