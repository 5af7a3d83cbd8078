"""At launch, and only then: read credential values and derive the per-launch inputs.

`sidecar_env` is the one place credential values exist outside the host env; it goes
to the sidecar process's environment and nowhere else (no file, no log, no summary).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bot_bottle.errors import CredentialError
from bot_bottle.plan.model import BottlePlan, ProvisionFile, gate_token_slots
from bot_bottle.policy.egress_policy import EgressPolicy
from bot_bottle.providers import provider_for


@dataclass(frozen=True)
class LaunchInputs:
    policy: EgressPolicy
    sidecar_env: dict[str, str]
    agent_env: dict[str, str]
    files: tuple[ProvisionFile, ...]
    gate_env: dict[str, str] = field(default_factory=dict)  # GIT_GATE_TOKEN_n -> value

    def __repr__(self) -> str:  # never print credential values by accident
        slots = sorted(self.sidecar_env) + sorted(self.gate_env)
        return f"LaunchInputs(slots={slots}, files={len(self.files)})"


class CredentialErrors(CredentialError):
    """Every credential a launch needs and the host lacks, named at once (a user who
    fixes one should not meet the next on the following run)."""

    def __init__(self, problems: tuple[CredentialError, ...]) -> None:
        self.problems = problems
        lines = [f"  - {p.message}" + (f"\n    fix: {p.fix}" if p.fix else "") for p in problems]
        super().__init__(f"{len(problems)} credentials are missing:\n" + "\n".join(lines))


def materialize(plan: BottlePlan, host_env: Mapping[str, str]) -> LaunchInputs:
    """The launch inputs, or a `CredentialError` naming every missing credential."""
    inputs, problems = try_materialize(plan, host_env)
    if len(problems) == 1:
        raise problems[0]
    if problems or inputs is None:
        raise CredentialErrors(problems)
    return inputs


def try_materialize(
    plan: BottlePlan, host_env: Mapping[str, str]
) -> tuple[LaunchInputs | None, tuple[CredentialError, ...]]:
    """The launch inputs and no problems, or None and every credential problem found."""
    problems: list[CredentialError] = []
    provider = provider_for(plan.provider)
    # Provider-held credentials (e.g. Codex's host login) resolve like any token ref.
    try:
        held = provider.launch_secrets(plan.provider_options, host_env)
    except CredentialError as e:  # its message names the host login; slots need no second
        problems.append(e)
        held = {}
    provider_failed = bool(problems)
    env = {**host_env, **held}
    sidecar_env: dict[str, str] = {}
    for slot in plan.token_slots:
        value = env.get(slot.ref)
        if not value:
            if provider_failed and slot.source == plan.provider:
                continue  # the provider's own error above already names its credential
            hosts = ", ".join(
                r.host for r in plan.egress.routes if r.auth and r.auth.slot == slot.slot
            )
            hint = provider.credential_hint if slot.source == plan.provider else ""
            problems.append(
                CredentialError(
                    f"the egress route for {hosts} needs the host env var {slot.ref}, "
                    "which is not set",
                    f"export {slot.ref}=... before launching ({hint})"
                    if hint
                    else f"export {slot.ref}=... before launching, or remove that route's auth",
                )
            )
            continue
        sidecar_env[slot.slot] = value
    for slot in plan.protect_slots:
        # A protected variable that is unset has no value that could leak.
        if host_env.get(slot.ref):
            sidecar_env[slot.slot] = host_env[slot.ref]

    gate_env: dict[str, str] = {}
    remotes = {r.name: r for r in plan.git_remotes}
    for name, gate_slot in gate_token_slots(plan.git_remotes).items():
        ref = remotes[name].token_ref
        if not host_env.get(ref):
            problems.append(
                CredentialError(
                    f"git remote {name!r} needs the host env var {ref} (its https token), "
                    "which is not set",
                    f"export {ref}=... before launching, or remove token_ref from that remote",
                )
            )
            continue
        gate_env[gate_slot] = host_env[ref]

    agent_env: dict[str, str] = {}
    for var in plan.env:
        if var.from_host is not None:
            if var.from_host not in host_env:
                problems.append(
                    CredentialError(
                        f"env {var.name} takes its value from host variable {var.from_host}, "
                        "which is not set",
                        f"export {var.from_host}=... or remove {var.name} from the bottle's env",
                    )
                )
                continue
            agent_env[var.name] = host_env[var.from_host]
        elif var.value is not None:
            agent_env[var.name] = var.value
    if problems:
        return None, tuple(problems)

    canary_file, canary_values = canaries()
    policy = replace(
        plan.egress,
        dlp=replace(plan.egress.dlp, canaries=plan.egress.dlp.canaries + canary_values),
    )
    files = (*plan.files, *provider.launch_files(plan.provider_options, host_env), canary_file)
    return LaunchInputs(policy, sidecar_env, agent_env, files, gate_env), ()


def canaries() -> tuple[ProvisionFile, tuple[str, ...]]:
    """A decoy `~/.aws/credentials`, fresh per launch. Its keys open nothing; seeing
    them in traffic means the agent went looking for credentials and tried to send them."""
    upper = string.ascii_uppercase + "234567"
    key_id = "AKIA" + "".join(secrets.choice(upper) for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    body = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    return ProvisionFile("~/.aws/credentials", body.encode(), 0o600), (key_id, secret)
