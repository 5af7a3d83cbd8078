"""The manifest schema: bottles (what a sandbox allows) and agents (who runs in one).

Pydantic models at this one boundary give precise, path-addressed errors and a JSON
Schema for editors. Everything is `extra="forbid"`: a misspelt key is an error, not
a silently ignored setting that weakens a sandbox.

Longer than 300 lines: the schema is one tree, read top to bottom as a manifest is,
and the JSON Schema and docs/manifest.md are generated from and checked against it.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot_bottle.manifest.resources import (
    CPUS_MAX,
    CPUS_MIN,
    MEMORY_EXAMPLES,
    check_cpus,
    check_memory,
)
from bot_bottle.names import BACKENDS, NAME_RULE, is_name
from bot_bottle.policy.host import EXPECTED, route_pattern
from bot_bottle.policy.patterns import pattern_error

if TYPE_CHECKING:
    BackendChoice = str
else:  # the one list of backend ids (mypy cannot read a Literal built from it)
    BackendChoice = Literal[("auto", *BACKENDS)]

# A manifest is a policy, not data: these bound what one may declare, so a huge or
# hostile manifest is refused quickly with a clear message instead of taking minutes
# and gigabytes to validate. docs/manifest.md lists them.
LIMITS = {
    "bottles": 100,
    "agents": 100,
    "routes": 500,
    "path_allowlist": 100,
    "methods": 20,
    "patterns": 100,
    "protect_env": 100,
    "ssrf_ip_allowlist": 100,
    "hosts": 500,
    "remotes": 50,
    "env": 500,
    "skills": 100,
}

# RFC 9110's methods and PATCH (RFC 5789), less CONNECT and TRACE (see
# `RouteSpec._methods`): a misspelt or invented method would only ever make a route deny
# what it meant to allow, silently.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]


def _check_name(v: str) -> str:
    if not is_name(v):
        raise ValueError(f"{v!r} is not a name ({NAME_RULE}): names become paths")
    return v


# Names that become part of a path: agent and bottle names (the bottle's state dir),
# skill names (a directory under the host's skills dir).
Name = Annotated[str, AfterValidator(_check_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class RouteAuthSpec(Strict):
    """Credential the egress sidecar injects; the agent never sees it."""

    scheme: Literal["Bearer", "Basic", "header"] = Field(
        description="Bearer token, Basic (`user:pass` in the variable), or a named header."
    )
    header: str | None = Field(None, description="Header name, required when scheme is `header`.")
    token_ref: EnvName = Field(description="Name of the host env var holding the credential.")

    @model_validator(mode="after")
    def _header_iff_scheme(self) -> RouteAuthSpec:
        if self.scheme == "header" and not self.header:
            raise ValueError(
                "`header` is required when scheme is `header` (e.g. header: X-Api-Key)"
            )
        if self.scheme != "header" and self.header:
            raise ValueError("`header` is only used with scheme `header`")
        return self


class RouteSpec(Strict):
    """One allowed destination: host, path prefixes, methods, optional injected auth."""

    host: str = Field(description="Exact host, or `*.example.com` for its subdomains.")
    scheme: Literal["https", "http"] = Field(
        "https", description="`https` (default) or `http`: cleartext, never with `auth`."
    )
    port: int | None = Field(
        None, ge=1, le=65535, description="Port the route allows; default 443 (http: 80)."
    )
    path_allowlist: list[str] = Field(
        default_factory=list,
        max_length=LIMITS["path_allowlist"],
        description="Allowed path prefixes; empty allows every path.",
    )
    methods: list[str] = Field(
        default_factory=list,
        max_length=LIMITS["methods"],
        description="Allowed methods; empty allows all.",
    )
    auth: RouteAuthSpec | None = None
    tls_passthrough: bool = Field(
        False, description="Tunnel without inspection: no path rules, DLP or injection."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        try:
            return route_pattern(v)
        except ValueError as e:
            raise ValueError(f"{e}; {EXPECTED}") from None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (443 if self.scheme == "https" else 80)

    @field_validator("auth")
    @classmethod
    def _auth_over_tls(cls, v: RouteAuthSpec | None, info: ValidationInfo) -> RouteAuthSpec | None:
        if v is not None and info.data.get("scheme") == "http":
            raise ValueError(
                "a credential is injected only over verified TLS, never on an `http` route; "
                "use scheme https (the default) or remove auth"
            )
        return v

    @field_validator("path_allowlist")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.startswith("/"):
                raise ValueError(f"path prefixes start with `/`; found {p!r}")
        return v

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        out = [m.upper() for m in v]
        for m in out:
            if m == "CONNECT":
                raise ValueError(
                    "CONNECT is how a client opens a tunnel to the proxy, not a request a "
                    "route allows: every route already admits the tunnel to its host and "
                    "port, and `methods` limits the requests inside it"
                )
            if m == "TRACE":
                raise ValueError(
                    "TRACE asks the server to echo the request back, headers included, and "
                    "egress adds the route's credential to the request: never allowed"
                )
            if m not in HTTP_METHODS:
                raise ValueError(
                    f"{m!r} is not an HTTP method; expected some of {', '.join(HTTP_METHODS)}"
                )
        return out

    @model_validator(mode="after")
    def _passthrough_excludes(self) -> RouteSpec:
        if self.tls_passthrough and (self.auth or self.path_allowlist):
            raise ValueError(
                "tls_passthrough routes are not decrypted, so `auth` and `path_allowlist` "
                "cannot apply to them; remove those or drop tls_passthrough"
            )
        if self.tls_passthrough and self.scheme == "http":
            raise ValueError("tls_passthrough relays TLS; it cannot be an `http` route")
        return self


def _dlp_pattern(p: str) -> str:
    # Operator patterns run over agent-controlled bytes, so they are compiled by
    # Hyperscan (linear time), never by a backtracking engine; refuse here what it cannot.
    error = pattern_error(p)
    if error is not None:
        raise ValueError(f"invalid regex {p!r}: {error}")
    return p


DlpPattern = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_dlp_pattern)]


class DlpSpec(Strict):
    enabled: bool = True
    patterns: list[DlpPattern] = Field(
        default_factory=list,
        max_length=LIMITS["patterns"],
        description="Extra regexes to block (Hyperscan syntax: no lookaround or back-references).",
    )
    protect_env: list[EnvName] = Field(
        default_factory=list,
        max_length=LIMITS["protect_env"],
        description="Host env vars whose values must never leave the bottle.",
    )


class EgressSpec(Strict):
    routes: list[RouteSpec] = Field(default_factory=list, max_length=LIMITS["routes"])
    ssrf_ip_allowlist: list[str] = Field(
        default_factory=list,
        max_length=LIMITS["ssrf_ip_allowlist"],
        description="CIDRs the agent may reach although private.",
    )
    hosts: dict[str, str] = Field(
        default_factory=dict,
        max_length=LIMITS["hosts"],
        description="Static host -> IP map for the sidecar's resolver.",
    )
    upstream_ca: str | None = Field(None, description="Extra CA bundle trusted for upstream TLS.")
    dlp: DlpSpec = Field(default_factory=DlpSpec)

    @field_validator("ssrf_ip_allowlist")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ValueError(f"expected a CIDR like 10.0.0.0/8; found {c!r}") from None
        return v

    @field_validator("hosts")
    @classmethod
    def _ips(cls, v: dict[str, str]) -> dict[str, str]:
        for name, ip in v.items():
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ValueError(f"hosts.{name}: expected an IP address; found {ip!r}") from None
        return {k.lower().rstrip("."): ip for k, ip in v.items()}


class GitUser(Strict):
    name: str | None = None
    email: str | None = None


class GitRemoteSpec(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$")]
    url: str = Field(
        description="ssh (git@host:repo or ssh://), https, or a local path or file:// URL."
    )
    protected_refs: list[str] = Field(
        default_factory=list, description="Refs that may not be force-pushed or deleted."
    )
    allowed_refs: list[str] = Field(
        default_factory=list,
        description="Glob patterns of refs the agent may push; empty: branches and tags.",
    )
    token_ref: EnvName | None = Field(
        None,
        description="https remotes: host env var with a token the git gate pushes and "
        "fetches with; the agent never sees it.",
    )


class GitSpec(Strict):
    user: GitUser = Field(default_factory=GitUser)
    remotes: list[GitRemoteSpec] = Field(default_factory=list, max_length=LIMITS["remotes"])

    @model_validator(mode="after")
    def _unique_remotes(self) -> GitSpec:
        names = [r.name for r in self.remotes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"remote names must be unique; repeated: {sorted(dup)}")
        return self


class FromHost(Strict):
    from_host: EnvName


class AgentProviderSpec(Strict):
    template: Literal["claude", "codex", "command"] = "claude"
    command: list[str] | None = Field(None, description="argv, for the `command` template.")
    dockerfile: str | None = Field(None, description="Custom agent image (Docker backend).")
    auth_token: EnvName | None = Field(
        None, description="Claude only: host env var with an OAuth token that egress injects."
    )
    api_key: EnvName | None = Field(
        None,
        description="Claude only: host env var with an Anthropic API key that egress "
        "injects as `x-api-key` (instead of `auth_token`).",
    )
    forward_host_credentials: bool = Field(
        False, description="Codex only: egress injects the host's ChatGPT login token."
    )

    @model_validator(mode="after")
    def _per_template(self) -> AgentProviderSpec:
        if self.template == "command" and not self.command:
            raise ValueError(
                "the `command` template needs `command`, an argv list like [python3, x.py]"
            )
        if self.template != "command" and self.command:
            raise ValueError(f"`command` only applies to template `command`, not {self.template!r}")
        if self.auth_token and self.template != "claude":
            raise ValueError("`auth_token` is for template `claude` only")
        if self.api_key and self.template != "claude":
            raise ValueError("`api_key` is for template `claude` only")
        if self.api_key and self.auth_token:
            raise ValueError(
                "give `auth_token` (an OAuth token from `bot-bottle agents exec "
                "claude -- setup-token`) or `api_key`, not both"
            )
        if self.forward_host_credentials and self.template != "codex":
            raise ValueError("`forward_host_credentials` is for template `codex` only")
        return self


class WorkspaceSpec(Strict):
    mode: Literal["mount", "copy", "none"] = "mount"
    path: str = Field(".", description="Host directory, relative to the manifest's directory.")


class ResourcesSpec(Strict):
    """Limits the backend enforces, or refuses to start without (never ignores)."""

    cpus: float | None = Field(
        None, description=f"CPUs the bottle may use, {CPUS_MIN} to {CPUS_MAX:g} (e.g. 1.5)."
    )
    memory: str | None = Field(None, description=f"Memory limit, {MEMORY_EXAMPLES}.")

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus_number(cls, v: object) -> object:
        if isinstance(v, bool):  # `cpus: yes` is a slip, not 1 CPU
            raise ValueError(f"expected a number of CPUs like 1 or 0.5; found {v!r}")
        return v

    @field_validator("cpus")
    @classmethod
    def _cpus_range(cls, v: float | None) -> float | None:
        return None if v is None else check_cpus(v)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory_size(cls, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise ValueError(f"expected a memory size {MEMORY_EXAMPLES}; found {v!r}")
        return check_memory(str(v))


class SuperviseSpec(Strict):
    enabled: bool = False


class BottleSpec(Strict):
    """What a sandbox gives its agent and lets out."""

    extends: Name | None = Field(None, description="Bottle to inherit from; this one's fields win.")
    agent_provider: AgentProviderSpec = Field(default_factory=AgentProviderSpec)
    egress: EgressSpec = Field(default_factory=EgressSpec)
    git: GitSpec = Field(default_factory=GitSpec)
    env: dict[EnvName, str | FromHost] = Field(default_factory=dict, max_length=LIMITS["env"])
    secret_env: list[EnvName] = Field(
        default_factory=list, description="Env names hidden in summaries."
    )
    workspace: WorkspaceSpec = Field(default_factory=WorkspaceSpec)
    backend: BackendChoice = "auto"
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    supervise: SuperviseSpec = Field(default_factory=SuperviseSpec)

    @field_validator("env", mode="before")
    @classmethod
    def _scalars_as_text(cls, v: object) -> object:
        # `PORT: 8080` and `DEBUG: true` are what people write; the agent sees text.
        if isinstance(v, dict):
            return {
                k: (str(x).lower() if isinstance(x, bool) else str(x))
                if isinstance(x, int | float)
                else x
                for k, x in v.items()
            }
        return v

    @field_validator("workspace", mode="before")
    @classmethod
    def _workspace_shorthand(cls, v: object) -> object:
        return {"mode": v} if isinstance(v, str) else v

    @field_validator("supervise", mode="before")
    @classmethod
    def _supervise_shorthand(cls, v: object) -> object:
        return {"enabled": v} if isinstance(v, bool) else v


class AgentGit(Strict):
    user: GitUser = Field(default_factory=GitUser)


class AgentSpec(Strict):
    """Who runs in a bottle: its prompt, skills and git identity overlay."""

    bottle: Name
    prompt: str | None = None
    prompt_file: str | None = None
    skills: list[Name] = Field(
        default_factory=list,
        max_length=LIMITS["skills"],
        description="Host skill directory names.",
    )
    git: AgentGit = Field(default_factory=AgentGit)

    @model_validator(mode="after")
    def _one_prompt(self) -> AgentSpec:
        if self.prompt is not None and self.prompt_file is not None:
            raise ValueError("give `prompt` or `prompt_file`, not both")
        return self


class Manifest(Strict):
    """A bot-bottle manifest (`bot-bottle.yaml`)."""

    bottles: dict[Name, BottleSpec] = Field(default_factory=dict, max_length=LIMITS["bottles"])
    agents: dict[Name, AgentSpec] = Field(default_factory=dict, max_length=LIMITS["agents"])

    @model_validator(mode="after")
    def _agents_name_bottles(self) -> Manifest:
        known = ", ".join(sorted(self.bottles)) or "none defined"
        wrong = [f"agents.{name}.bottle: no bottle named {agent.bottle!r}"
                 for name, agent in self.agents.items() if agent.bottle not in self.bottles]  # fmt: skip
        if wrong:  # every agent's at once
            raise ValueError("; ".join(wrong) + f" (bottles: {known})")
        return self
