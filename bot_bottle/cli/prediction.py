"""What `plan`, `check` and `doctor` say a `run` would meet: `preflight`'s verdict (the
same function `run` stops on), plus the approval, which only `run -y` refuses."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

if TYPE_CHECKING:
    from bot_bottle.plan.model import BottlePlan
    from bot_bottle.preflight import Preflight
    from bot_bottle.state.approval import Verdict


def predict(plan: BottlePlan, requested: str, verdict: Verdict | None = None) -> Preflight:
    """`preflight` for a launch of `plan` from this shell, with a note when the
    configuration is not approved (a terminal `run` asks; `run -y` refuses)."""
    from bot_bottle.cli.trust_cmd import trust_hint
    from bot_bottle.launch import agents_dir
    from bot_bottle.preflight import preflight
    from bot_bottle.state.store import StateStore

    found = preflight(plan, requested, os.environ, agents_dir(StateStore()))
    if verdict is not None and not verdict.approved:
        what = "is not approved" if verdict.status == "unapproved" else "changed since approval"
        note = (f"the configuration {what}: `run` on a terminal asks first, `run -y` refuses "
                f"it until `{trust_hint(plan.manifest_path)}`")  # fmt: skip
        found = replace(found, notes=(*found.notes, note))
    return found


def verdict_of(plan: BottlePlan) -> Verdict:
    """Whether `plan` is approved as it is (read only: nothing is pinned or recorded)."""
    from bot_bottle.state.approval import ApprovalStore, evaluate
    from bot_bottle.state.store import StateStore

    return evaluate(ApprovalStore(StateStore().root), plan)


def prediction_dict(found: Preflight) -> dict[str, Any]:
    """The verdict as plain data (never a credential: `inputs` stays out)."""
    return {
        "backend": found.backend_id,
        "ready": found.ok,
        "blockers": [{"message": b.message, "fix": b.fix} for b in found.blockers],
        "notes": list(found.notes),
    }


def render_prediction(found: Preflight) -> Group:
    lines: list[Text] = []
    if found.ok:
        lines.append(Text(f"ready: `run` would start on backend {found.backend_id}", "green"))
    else:
        n = len(found.blockers)
        lines.append(Text(f"blocked: `run` would stop on {n} problem{'s' if n > 1 else ''}:",
                          "bold red"))  # fmt: skip
        for b in found.blockers:
            lines.append(Text(f"  - {b.message}" + (f"\n    fix: {b.fix}" if b.fix else "")))
    lines += [Text(f"note: {n}", "yellow") for n in found.notes]
    return Group(*lines)
