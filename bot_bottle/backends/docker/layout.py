"""A Docker bottle as values: names, labels, and the create arguments of its volumes
and its one container. Pure, so unit tests check the isolation settings directly.

Shape: the agent container has no network at all (`network_mode: none`: only `lo`,
no route, no resolver that answers; Docker's embedded DNS forwards queries from
internal networks to the host's resolver, CVE-2024-29018). Its main process is the
namespace backend's in-bottle forwarder, which listens on `127.0.0.1:PORT` for each
sidecar and relays to the host sidecar's Unix socket, bind-mounted read-only; the
agent's commands run beside it through `docker exec`. Egress itself happens in the
host sidecar processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from bot_bottle.backends.docker import lifeline, seccomp
from bot_bottle.backends.host_user import workspace_owner
from bot_bottle.backends.namespace.sandbox import FORWARDER
from bot_bottle.backends.spec import BottleSpec, workspace_binds
from bot_bottle.backends.spec import agent_env as merged_env
from bot_bottle.manifest.resources import parse_memory

LABEL_SLUG = "bot-bottle.slug"
LABEL_ROLE = "bot-bottle.role"
LABEL_LAUNCHER = "bot-bottle.launcher"
LABEL_STATE = "bot-bottle.state"  # the bottle's state dir: gc never guesses the home
HOME = "/home/agent"
HOME_VOLUME_AT = "/home"  # the volume holds /home, so the engine can chown HOME in it
WORKSPACE = "/workspace"
AGENT_USER = "1000:1000"
LINKS_DIR = "/run/bot-bottle"
FORWARDER_INSIDE = "/run/bot-bottle-init/forwarder.py"
READY = "bot-bottle forwarder ready"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Hardening every container gets: no capabilities, no setuid escalation, bot-bottle's
# seccomp profile (socket families, io_uring: see seccomp.py), a pid cap against fork
# bombs, and an init that reaps and forwards signals.
HARDENING: dict[str, Any] = {
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges", seccomp.security_opt()],
    "init": True,
}


@dataclass(frozen=True)
class Names:
    """Every engine object of one bottle, derived from its slug."""

    agent: str
    home: str
    work: str

    @classmethod
    def of(cls, slug: str) -> Names:
        p = f"bb-{slug}"
        return cls(f"{p}-agent", f"{p}-home", f"{p}-work")


def labels(
    slug: str, role: str, state_dir: object, launcher_pid: int | None = None
) -> dict[str, str]:
    out = {LABEL_SLUG: slug, LABEL_ROLE: role, LABEL_STATE: str(state_dir)}
    if launcher_pid is not None:
        out[LABEL_LAUNCHER] = str(launcher_pid)
    return out


@dataclass(frozen=True)
class Mount:
    """A bind (`source` is a host path) or named volume mounted at `target`."""

    target: str
    source: str
    type: Literal["bind", "volume"]
    read_only: bool = False


@dataclass(frozen=True)
class ContainerConfig:
    """`docker create` for one container, as a value."""

    name: str
    image: str
    command: tuple[str, ...]
    user: str
    labels: Mapping[str, str]
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    network_mode: str | None = None  # "none": no interface but lo
    read_only: bool = True
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    nano_cpus: int | None = None
    mem_limit: int | None = None
    pids_limit: int = 4096
    runtime: str | None = None
    working_dir: str | None = None

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `DockerClient.containers.create` (mounts excluded:
        the caller turns `mounts` into SDK `Mount`s)."""
        kw: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command),
            "name": self.name,
            "user": self.user,
            "labels": dict(self.labels),
            "environment": dict(self.environment),
            "read_only": self.read_only,
            "tmpfs": dict(self.tmpfs),
            "pids_limit": self.pids_limit,
            "detach": True,
            **HARDENING,
        }
        optional = {"network_mode": self.network_mode, "nano_cpus": self.nano_cpus, "mem_limit": self.mem_limit,
                    "runtime": self.runtime, "working_dir": self.working_dir}  # fmt: skip
        kw.update({k: v for k, v in optional.items() if v is not None})
        return kw


def agent_user(spec: BottleSpec) -> str:
    """Who the agent runs as: uid 1000, except with a bind-mounted workspace, where it is
    the workspace's owner, so the agent can edit the files it was given and what it
    creates belongs to the user (as in the namespace backend). Never root: a root-owned
    mounted workspace is refused (`host_user.workspace_owner`), whoever launches, since
    uid 0 without capabilities still owns, and could leave behind, root's files."""
    if spec.workspace_mode == "mount" and spec.workspace_path:
        return workspace_owner(spec.workspace_path).spec
    return AGENT_USER


def agent_env(spec: BottleSpec) -> dict[str, str]:
    """The agent's environment: the spec's, then proxy/CA variables and HOME (they win:
    `plan.environment`), then PATH with the tools' directories first."""
    env = merged_env(spec, HOME, {"PATH": DEFAULT_PATH})
    path_dirs = [
        str(PurePosixPath(t.target) / t.path_dir) if not t.path_dir.startswith("/") else t.path_dir
        for t in spec.tools
        if t.path_dir
    ]
    env["PATH"] = ":".join([*path_dirs, env.get("PATH", DEFAULT_PATH)])
    return env


def forwarder_command(spec: BottleSpec) -> tuple[str, ...]:
    """The container's main process: the forwarder binds every `127.0.0.1:PORT` first,
    then execs what prints `READY` (so the ready line means the listeners are up) and
    lasts the container's life: with sidecars, a holder of the launcher's `lifeline`,
    which exits (stopping the container) when the launcher dies; else a sleep. Runs on
    the image's python3, found on the image's own directories only: the container's PATH
    may name directories the agent writes (from the manifest's env), and this process
    runs as the sockets' owner."""
    pairs = [f"{link.port}={LINKS_DIR}/{link.name}/{link.socket.name}" for link in spec.sidecars]
    if spec.sidecars:
        held = f"{LINKS_DIR}/{spec.sidecars[0].name}/{lifeline.NAME}"
        main: tuple[str, ...] = ("python3", "-I", "-S", "-c", lifeline.HOLD, held, READY)
    else:
        main = ("sh", "-c", f"echo '{READY}' && exec sleep infinity")
    return ("/usr/bin/env", f"PATH={DEFAULT_PATH}", "python3", "-I", "-S", FORWARDER_INSIDE,
            *pairs, "--", *main)  # fmt: skip


def main_user(spec: BottleSpec) -> str:
    """Who runs the forwarder: the launcher's uid, because the host sockets are that
    user's (in mode-0700 state dirs). The agent's commands run as `agent_user` through
    `docker exec`; a different uid cannot signal, trace or read the forwarder, and
    reaches the sidecars only through its loopback ports. As root it still has no
    capability at all."""
    return f"{os.getuid()}:{os.getgid()}" if spec.sidecars else agent_user(spec)


def unprotected(mounts: list[dict[str, Any]], spec: BottleSpec) -> list[str]:
    """Which of the spec's protective workspace binds a kept agent container lacks
    (`mounts` as the engine reports them): a container's mounts are fixed when it is
    created, so a manifest approved since with other files cannot be resumed in it."""
    have = {(m.get("Destination"), bool(m.get("RW"))) for m in mounts}
    return [f"{WORKSPACE}/{b.rel}" for b in workspace_binds(spec)
            if (f"{WORKSPACE}/{b.rel}", not b.read_only) not in have]  # fmt: skip


def agent_config(
    spec: BottleSpec, image: str, *, runtime: str | None, launcher_pid: int
) -> ContainerConfig:
    """The agent container: no network, read-only root, HOME and workspace on volumes
    (or the workspace bind-mounted), each sidecar's socket directory read-only."""
    n = Names.of(spec.slug)
    mounts = [Mount(HOME_VOLUME_AT, n.home, "volume")]
    if spec.workspace_mode == "mount":
        mounts.append(Mount(WORKSPACE, spec.workspace_path, "bind"))
        # The files the launch read, read-only and unmovable (the engine mounts
        # parents before children).
        mounts += [Mount(f"{WORKSPACE}/{b.rel}", b.source, "bind", b.read_only)
                   for b in workspace_binds(spec)]  # fmt: skip
    else:
        mounts.append(Mount(WORKSPACE, n.work, "volume"))
    mounts += [Mount(t.target, str(t.source), "bind", read_only=True) for t in spec.tools]
    mounts.append(Mount(FORWARDER_INSIDE, str(FORWARDER.resolve()), "bind", read_only=True))
    mounts += [Mount(f"{LINKS_DIR}/{link.name}", str(link.socket.parent), "bind", read_only=True)
               for link in spec.sidecars]  # fmt: skip
    return ContainerConfig(
        name=n.agent,
        image=image,
        command=forwarder_command(spec),
        user=main_user(spec),
        labels=labels(spec.slug, "agent", spec.state_dir, launcher_pid),
        environment=agent_env(spec),
        mounts=tuple(mounts),
        network_mode="none",
        tmpfs={"/tmp": "rw,nosuid,nodev,size=1g", "/var/tmp": "rw,nosuid,nodev,size=256m"},
        nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
        mem_limit=parse_memory(spec.memory) if spec.memory else None,
        runtime=runtime,
        working_dir=WORKSPACE,
    )
