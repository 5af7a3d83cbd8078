"""A Docker bottle as values: names, labels, and the create arguments of its network,
volumes and two containers. Pure, so unit tests check the isolation settings directly.

Shape: the sidecar container owns the bottle's network namespace, attached only to the
bottle's `internal` network (no route out), and relays `127.0.0.1:PORT` to the host
sidecars' Unix sockets. The agent container joins that namespace, so it sees exactly
loopback plus the internal network, and the sidecars at the same `127.0.0.1:port`
every backend promises. Egress itself happens in the host sidecar processes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bot_bottle.backends.base import BottleSpec, network_env, workspace_binds

LABEL_SLUG = "bot-bottle.slug"
LABEL_ROLE = "bot-bottle.role"
LABEL_LAUNCHER = "bot-bottle.launcher"
LABEL_STATE = "bot-bottle.state"  # the bottle's state dir: gc never guesses the home
HOME = "/home/agent"
HOME_VOLUME_AT = "/home"  # the volume holds /home, so the engine can chown HOME in it
WORKSPACE = "/workspace"
AGENT_USER = "1000:1000"
SIDECAR_USER = "10001:10001"
LINKS_DIR = "/run/bot-bottle/links"
RELAY_INSIDE = "/opt/bot-bottle/relay.py"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# `internal` alone only stops forwarding: the host still owns the bridge's gateway
# address, so a container on it reaches every host service listening on 0.0.0.0 (the
# gateway IP and the host's own IPs are local to the host, never forwarded). Without an
# address on the bridge, nothing on the host answers the bottle's network.
NETWORK_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}
# Hardening every container gets: no capabilities, no setuid escalation, a pid cap
# against fork bombs, and an init that reaps and forwards signals.
HARDENING: dict[str, Any] = {
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "init": True,
}


@dataclass(frozen=True)
class Names:
    """Every engine object of one bottle, derived from its slug."""

    network: str
    sidecar: str
    agent: str
    home: str
    work: str

    @classmethod
    def of(cls, slug: str) -> Names:
        p = f"bb-{slug}"
        return cls(f"{p}-internal", f"{p}-sidecar", f"{p}-agent", f"{p}-home", f"{p}-work")


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
    type: str  # bind | volume
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
    network: str | None = None  # attach to this network at create
    network_alias: str | None = None
    network_mode: str | None = None  # e.g. container:<name>
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
        optional = {"network": self.network, "network_mode": self.network_mode,
                    "nano_cpus": self.nano_cpus, "mem_limit": self.mem_limit,
                    "runtime": self.runtime, "working_dir": self.working_dir}  # fmt: skip
        kw.update({k: v for k, v in optional.items() if v is not None})
        return kw


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_memory(text: str) -> int:
    """`512m`, `4GiB`, `2g`, `1073741824` as bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise ValueError(f"cannot read memory size {text!r} (use e.g. 512m, 4g, 4GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def sidecar_config(
    spec: BottleSpec, image: str, *, runtime: str | None, launcher_pid: int
) -> ContainerConfig:
    """The relay container: owns the netns, mounts each host sidecar's socket directory
    read-only, and runs the host's copy of `relay.py` (stdlib only). It runs as the
    launcher's uid because the host sockets are that user's (mode 0700 state dirs);
    as root it still has no capabilities at all."""
    n = Names.of(spec.slug)
    mounts, args = [], []
    for link in spec.sidecars:
        inside = f"{LINKS_DIR}/{link.name}"
        mounts.append(Mount(inside, str(link.socket.parent), "bind", read_only=True))
        args.append(f"{link.port}={inside}/{link.socket.name}")
    from bot_bottle.backends.docker import relay

    mounts.append(Mount(RELAY_INSIDE, str(Path(relay.__file__).resolve()), "bind", True))
    user = f"{os.getuid()}:{os.getgid()}" if spec.sidecars else SIDECAR_USER
    return ContainerConfig(
        name=n.sidecar,
        image=image,
        command=("python3", "-I", RELAY_INSIDE, *args),
        user=user,
        labels=labels(spec.slug, "sidecar", spec.state_dir, launcher_pid),
        mounts=tuple(mounts),
        network=n.network,
        network_alias="sidecar",
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"},
        mem_limit=256 * 1024**2,
        pids_limit=256,
        runtime=runtime,
    )


def agent_user(spec: BottleSpec) -> str:
    """Who the agent runs as: uid 1000, except with a bind-mounted workspace, where it is
    the workspace's owner, so the agent can edit the files it was given and what it
    creates belongs to the user (as in the namespace backend). A root-owned mounted
    workspace therefore means uid 0 without any capability, as bwrap would run it."""
    if spec.workspace_mode == "mount" and spec.workspace_path:
        st = os.stat(spec.workspace_path)
        return f"{st.st_uid}:{st.st_gid}"
    return AGENT_USER


def agent_env(spec: BottleSpec) -> dict[str, str]:
    """The agent's environment: the spec's, then proxy/CA variables, HOME and PATH."""
    env = dict(spec.env)
    env.update(network_env(spec, HOME))
    env["HOME"] = HOME
    path_dirs = [
        str(PurePosixPath(t.target) / t.path_dir) if not t.path_dir.startswith("/") else t.path_dir
        for t in spec.tools
        if t.path_dir
    ]
    env["PATH"] = ":".join([*path_dirs, env.get("PATH", DEFAULT_PATH)])
    return env


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
    """The agent container: no network of its own (it joins the sidecar's namespace),
    read-only root, HOME and workspace on volumes (or the workspace bind-mounted)."""
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
    return ContainerConfig(
        name=n.agent,
        image=image,
        command=("sleep", "infinity"),
        user=agent_user(spec),
        labels=labels(spec.slug, "agent", spec.state_dir, launcher_pid),
        environment=agent_env(spec),
        mounts=tuple(mounts),
        network_mode=f"container:{n.sidecar}",
        tmpfs={"/tmp": "rw,nosuid,nodev,size=1g", "/var/tmp": "rw,nosuid,nodev,size=256m"},
        nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
        mem_limit=parse_memory(spec.memory) if spec.memory else None,
        runtime=runtime,
        working_dir=WORKSPACE,
    )
