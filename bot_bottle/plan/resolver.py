"""manifest + agent name + host env -> `BottlePlan`. Reads no credential value.

Provider-owned routes merge into the manifest's by the rules the history settled on:
a host the manifest does not name is *added*; a manifest route for that host without
auth is *upgraded* (its path and method limits kept, the provider's auth added); a
manifest route with the same auth is left alone; one with other auth, or a
passthrough route, is a *conflict* and an error.
Just past 300 lines: the route merge rules sit beside the one resolution that uses them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bot_bottle.errors import ManifestError, raise_all
from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.manifest.model import BottleSpec, RouteSpec
from bot_bottle.manifest.validation import did_you_mean
from bot_bottle.plan import supervise_tools
from bot_bottle.plan.environment import RESERVED_ENV
from bot_bottle.plan.model import (
    BottlePlan,
    EnvVar,
    GitIdentity,
    GitRemotePlan,
    Resources,
    Sourced,
    TokenSlot,
    Workspace,
)
from bot_bottle.plan.upstream_ca import ca_bundle_error
from bot_bottle.policy.egress_policy import DlpSettings, EgressPolicy, Route, RouteAuth, RouteSource
from bot_bottle.providers import ProviderRoute, provider_for
from bot_bottle.providers.base import ProviderOptions

DEFAULT_GIT_NAME = "bot-bottle agent"
DEFAULT_GIT_EMAIL = "agent@bot-bottle.invalid"


def skills_dir(host_env: Mapping[str, str]) -> Path:
    """Where host skill directories live: `$BOT_BOTTLE_SKILLS_DIR` or `~/.claude/skills`."""
    if host_env.get("BOT_BOTTLE_SKILLS_DIR"):
        return Path(host_env["BOT_BOTTLE_SKILLS_DIR"])
    return Path(host_env.get("HOME", str(Path.home()))) / ".claude" / "skills"


def resolve(
    loaded: LoadedManifest,
    agent_name: str,
    host_env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> BottlePlan:
    host_env = os.environ if host_env is None else host_env
    m = loaded.manifest
    if not m.agents:
        raise ManifestError(
            f"{loaded.path} defines no agents: there is nothing to run",
            fix="add one under `agents:` naming a bottle (`bot-bottle init -f example.yaml` "
            "writes a commented example)",
        )
    if agent_name not in m.agents:
        known = sorted(m.agents)
        raise ManifestError(
            f"no agent named {agent_name!r}{did_you_mean(agent_name, known)} "
            f"(agents: {', '.join(known)})",
            "agents",
        )
    problems: list[ManifestError] = []  # files the plan reads: every one missing, at once
    agent = m.agents[agent_name]
    bottle = m.bottles[agent.bottle]
    where = f"bottles.{agent.bottle}"
    spec = bottle.agent_provider
    provider = provider_for(spec.template)

    prompt = agent.prompt or ""
    sources: list[str] = []
    prompt_file = ""
    if agent.prompt_file:
        pf = (loaded.base_dir / agent.prompt_file).resolve()
        prompt_file = str(pf)
        sources.append(prompt_file)
        try:
            prompt = pf.read_text()
        except OSError as e:
            problems.append(ManifestError(
                f"cannot read prompt file {pf}: {e.strerror}", f"agents.{agent_name}.prompt_file"
            ))  # fmt: skip

    kit = supervise_tools.kit(provider, prompt, bottle.supervise.enabled)
    contribution = provider.contribute(spec, kit.prompt)
    merged = merge_routes(bottle.egress.routes, contribution.routes, spec.template, where)
    policy_routes, token_slots = assign_slots(merged)
    protect = tuple(
        TokenSlot(f"EGRESS_PROTECT_{i}", ref, "manifest")
        for i, ref in enumerate(bottle.egress.dlp.protect_env)
    )
    upstream_ca = ""
    if bottle.egress.upstream_ca:
        ca = (loaded.base_dir / bottle.egress.upstream_ca).resolve()
        problem = f"no CA bundle at {ca}" if not ca.is_file() else ca_bundle_error(ca)
        if problem is not None:
            problems.append(ManifestError(problem, f"{where}.egress.upstream_ca"))
        upstream_ca = str(ca)
        sources.append(upstream_ca)
    egress = EgressPolicy(
        bottle=agent.bottle,
        routes=policy_routes,
        hosts=dict(bottle.egress.hosts),
        ssrf_ip_allowlist=tuple(bottle.egress.ssrf_ip_allowlist),
        upstream_ca=upstream_ca,
        dlp=DlpSettings(
            enabled=bottle.egress.dlp.enabled,
            patterns=tuple(bottle.egress.dlp.patterns),
            protect_slots=tuple(p.slot for p in protect),
        ),
        supervise=bottle.supervise.enabled,
        expected_denials=contribution.expected_denials,
    )

    env = _env(bottle, contribution.env, contribution.hidden_env, spec.template, where)
    hidden = frozenset(bottle.secret_env) | contribution.hidden_env

    skills = []
    for i, name in enumerate(agent.skills):
        path = skills_dir(host_env) / name
        if not path.is_dir():
            problems.append(ManifestError(
                f"no skill directory {path}",
                f"agents.{agent_name}.skills[{i}]",
                fix="create it, or set BOT_BOTTLE_SKILLS_DIR to where your skills live",
            ))  # fmt: skip
        skills.append(str(path))
    sources += skills

    ws = bottle.workspace
    ws_path = "" if ws.mode == "none" else str((loaded.base_dir / ws.path).resolve())
    if ws_path and not Path(ws_path).is_dir():
        what = "is a file, not a directory" if Path(ws_path).exists() else "does not exist"
        problems.append(ManifestError(f"workspace {ws_path} {what}", f"{where}.workspace.path",
                                      fix="point it at the project directory, relative to "
                                      "the manifest's directory"))  # fmt: skip
    dockerfile = str((loaded.base_dir / spec.dockerfile).resolve()) if spec.dockerfile else ""
    if dockerfile and not Path(dockerfile).is_file():
        problems.append(ManifestError(f"no Dockerfile at {dockerfile}",
                                      f"{where}.agent_provider.dockerfile"))  # fmt: skip
    raise_all(problems, f"agent {agent_name}")

    return BottlePlan(
        agent=agent_name,
        bottle=agent.bottle,
        provider=spec.template,
        argv=provider.argv(spec, kit.prompt, (*kit.args, *extra_args)),
        env=env,
        hidden_env=hidden,
        egress=egress,
        token_slots=token_slots,
        protect_slots=protect,
        files=contribution.files + kit.files,
        git_identity=_identity(bottle, agent.git.user.name, agent.git.user.email),
        git_remotes=tuple(
            GitRemotePlan(
                r.name, r.url, tuple(r.protected_refs), tuple(r.allowed_refs), r.token_ref or ""
            )
            for r in bottle.git.remotes
        ),
        workspace=Workspace(ws.mode, ws_path),
        backend=bottle.backend,
        image=contribution.image,
        dockerfile=dockerfile,
        resources=Resources(bottle.resources.cpus, bottle.resources.memory),
        skills=tuple(skills),
        skills_dir=contribution.skills_dir,
        supervise=bottle.supervise.enabled,
        manifest_digest=loaded.digest,
        manifest_path=str(loaded.path),
        prompt_file=prompt_file,
        prompt_digest="sha256:" + hashlib.sha256(prompt.encode()).hexdigest(),
        provider_options=ProviderOptions(spec.forward_host_credentials),
        sources=tuple(sources),
    )


def merge_routes(
    manifest_routes: Sequence[RouteSpec],
    provider_routes: Sequence[ProviderRoute],
    provider: str,
    where: str,
) -> list[Route]:
    """Effective routes, with auth slots temporarily holding the token *ref*.

    Added provider routes go first: they are exact hosts and must win over a
    manifest wildcard (`*.openai.com`) that would otherwise match without auth.
    """
    routes = [_route(r) for r in manifest_routes]
    added: list[Route] = []
    for pr in provider_routes:
        auth = RouteAuth(pr.scheme, pr.token_ref, pr.header)
        # Provider routes are https to 443; a manifest route on another port of the
        # same host is a different service and stays as written.
        idx = next(
            (
                i
                for i, r in enumerate(routes)
                if r.host == pr.host and r.scheme == "https" and r.port == 443
            ),
            None,
        )
        if idx is None:
            added.append(Route(pr.host, auth=auth, source=RouteSource(provider, manifest=False)))
            continue
        current = routes[idx]
        path = f"{where}.egress.routes[{idx}]"
        if current.tls_passthrough:
            raise ManifestError(
                f"tls_passthrough on {pr.host} conflicts with the {provider} provider, "
                "which injects a credential there (that needs TLS inspection)",
                path,
                fix="remove this route; the provider adds it",
            )
        if current.auth is None:
            routes[idx] = replace(current, auth=auth, source=RouteSource(provider))
        elif current.auth != auth:
            raise ManifestError(
                f"this route's auth for {pr.host} conflicts with the {provider} provider's "
                f"({pr.scheme} from {pr.token_ref})",
                f"{path}.auth",
                fix="remove the auth block here; the provider supplies it",
            )
    return added + routes


def _route(r: RouteSpec) -> Route:
    auth = RouteAuth(r.auth.scheme, r.auth.token_ref, r.auth.header or "") if r.auth else None
    return Route(
        host=r.host,
        paths=tuple(r.path_allowlist),
        methods=tuple(r.methods),
        auth=auth,
        tls_passthrough=r.tls_passthrough,
        scheme=r.scheme,
        port=r.effective_port,
    )


def assign_slots(routes: Sequence[Route]) -> tuple[tuple[Route, ...], tuple[TokenSlot, ...]]:
    """Routes from `merge_routes` (auth naming its token ref) with sidecar slots instead:
    one `EGRESS_TOKEN_<n>` per distinct ref, numbered in route order."""
    slots: dict[str, TokenSlot] = {}
    out = []
    for r in routes:
        if r.auth is None:
            out.append(r)
            continue
        ref = r.auth.slot
        if ref not in slots:
            slots[ref] = TokenSlot(f"EGRESS_TOKEN_{len(slots)}", ref, r.source.credential)
        out.append(replace(r, auth=replace(r.auth, slot=slots[ref].slot)))
    return tuple(out), tuple(slots.values())


def _env(
    bottle: BottleSpec,
    provider_env: Mapping[str, str],
    provider_hidden: frozenset[str],
    provider: str,
    where: str,
) -> tuple[EnvVar, ...]:
    out = [EnvVar(k, value=v, source=provider) for k, v in provider_env.items()]
    for name, value in bottle.env.items():
        path = f"{where}.env.{name}"
        if name in RESERVED_ENV:
            raise ManifestError(f"{name} is set by bot-bottle (proxy, CA and HOME wiring)", path)
        if name in provider_hidden:
            raise ManifestError(
                f"{name} is set by the {provider} provider: egress injects the real credential",
                path,
                fix="remove it; set agent_provider.auth_token to a host variable instead",
            )
        out = [e for e in out if e.name != name]
        if isinstance(value, str):
            out.append(EnvVar(name, value=value))
        else:
            out.append(EnvVar(name, from_host=value.from_host))
    return tuple(out)


def _identity(bottle: BottleSpec, agent_name: str | None, agent_email: str | None) -> GitIdentity:
    def pick(agent_value: str | None, bottle_value: str | None, default: str) -> Sourced:
        if agent_value:
            return Sourced(agent_value, "agent")
        if bottle_value:
            return Sourced(bottle_value, "bottle")
        return Sourced(default, "default")

    user = bottle.git.user
    return GitIdentity(
        name=pick(agent_name, user.name, DEFAULT_GIT_NAME),
        email=pick(agent_email, user.email, DEFAULT_GIT_EMAIL),
    )
