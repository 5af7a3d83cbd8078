"""Provisioning steps, written once against `Target`; no step knows its backend.

Order matters only where a later step reads an earlier one's file; each step is
idempotent so `resume` can run them again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle.plan.environment import TRUST_BUNDLE
from bot_bottle.plan.model import GitIdentity, GitRemotePlan, ProvisionFile
from bot_bottle.provision import config_merge
from bot_bottle.provision.target import Target

SYSTEM_CA_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


@dataclass(frozen=True)
class ProvisionInputs:
    """What the steps need, all non-secret: the egress CA certificate (public), files
    from the plan and provider (placeholders, decoys), skills, git settings."""

    egress_ca_pem: bytes
    files: tuple[ProvisionFile, ...] = ()
    skills: tuple[str, ...] = ()
    skills_dir: str = "~/.bot-bottle/skills"
    git_identity: GitIdentity = field(default_factory=GitIdentity)
    git_remotes: tuple[GitRemotePlan, ...] = ()
    git_gate_url: str = ""  # http://127.0.0.1:PORT when a git gate runs


def system_ca_bundle() -> bytes:
    for path in SYSTEM_CA_CANDIDATES:
        if os.path.isfile(path):
            return Path(path).read_bytes()
    return b""


def ca_bundle(target: Target, inputs: ProvisionInputs) -> None:
    """The bottle's trust bundle: the system CAs plus the egress CA, in one file that
    every client CA variable points at (see `plan.environment.CA_VARIABLES`)."""
    system = system_ca_bundle()
    sep = b"" if not system or system.endswith(b"\n") else b"\n"
    target.put_file(TRUST_BUNDLE, system + sep + inputs.egress_ca_pem, 0o644)
    target.put_file("~/.bot-bottle/egress-ca.pem", inputs.egress_ca_pem, 0o644)


def plan_files(target: Target, inputs: ProvisionInputs) -> None:
    """Prompt, provider files (dummy auth files, settings) and canary decoys."""
    for f in inputs.files:
        data = f.content
        if f.merge_json:
            existing = target.read_file(f.path, config_merge.LIMIT)
            data = config_merge.merged_config(existing, f.content, target.workspace)
        target.put_file(f.path, data, f.mode)


def skills(target: Target, inputs: ProvisionInputs) -> None:
    for src in inputs.skills:
        root = Path(src)
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                rel = path.relative_to(root)
                dest = f"{inputs.skills_dir}/{root.name}/{rel}"
                target.put_file(dest, path.read_bytes(), 0o644)


def git_config(target: Target, inputs: ProvisionInputs) -> None:
    """~/.gitconfig: identity, and each remote rewritten to the git gate, so pushes go
    through the gate's scan (the gate holds the real remote and its credentials)."""
    lines: list[str] = []
    ident = inputs.git_identity
    if ident.name or ident.email:
        lines.append("[user]")
        if ident.name:
            lines.append(f"\tname = {_quote(ident.name.value)}")
        if ident.email:
            lines.append(f"\temail = {_quote(ident.email.value)}")
    lines += ["[safe]", "\tdirectory = *", "[init]", "\tdefaultBranch = main"]
    if inputs.git_gate_url:
        for r in inputs.git_remotes:
            lines.append(f'[url "{inputs.git_gate_url}/{r.name}.git"]')
            lines.append(f"\tinsteadOf = {_quote(r.url)}")
    target.put_file("~/.gitconfig", ("\n".join(lines) + "\n").encode(), 0o644)


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


STEPS = (ca_bundle, plan_files, skills, git_config)


def provision(target: Target, inputs: ProvisionInputs) -> None:
    for step in STEPS:
        step(target, inputs)
