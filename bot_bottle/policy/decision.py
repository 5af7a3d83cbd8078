"""A decision is a value: allow or deny, the rule that decided, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """Outcome of one policy check.

    `rule` is a stable id from `rules.RULES` (`route`, `host-mismatch`, `dlp`, ...);
    `reason` is for the agent's 403 body and the audit log; `hint` is the manifest
    change that would allow this request, when it is more precise than the rule's.
    """

    allow: bool
    rule: str
    reason: str = ""
    hint: str = ""
    route: str = ""
    detector: str = ""
    fingerprint: str = ""

    @classmethod
    def allowed(cls, rule: str = "route", route: str = "") -> Decision:
        return cls(True, rule, route=route)

    @classmethod
    def denied(
        cls,
        rule: str,
        reason: str,
        hint: str = "",
        *,
        route: str = "",
        detector: str = "",
        fingerprint: str = "",
    ) -> Decision:
        return cls(False, rule, reason, hint, route, detector, fingerprint)
