"""The bubblewrap command line for one namespace bottle, built as a pure value.

What the agent sees, and why each piece is there:
- host `/usr` read-only (programs and libraries) with the merged-usr symlinks;
- from `/etc`, only files programs need to start: the dynamic linker cache,
  name-service config, CA certificates, alternatives, timezone, os-release. Never
  the whole directory (shadow, ssh host keys, `/etc/ssl/private`, host configs);
- `passwd`/`group`/`hosts` synthesized in the state dir: one user, localhost;
- a private HOME (kept in the state dir, so `--keep` + `resume` keeps it), the
  workspace (the host directory for `mount`, the state-dir copy for `copy`), a
  private `/tmp`, fresh `/proc` and minimal `/dev`;
- the sidecar sockets directory (sockets only: the sidecars' own files, CA key
  and audit log live elsewhere in the state dir, never bound in).
Everything else of the host (its HOME with `~/.ssh`, `~/.aws`, other bottles)
simply does not exist in the mount namespace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backends.host_user import HostUser
from bot_bottle.backends.spec import BottleSpec, agent_env, workspace_binds
from bot_bottle.executor import FD_PREFIX, Cmd

BOTTLE_USER = "agent"
BOTTLE_UID = 1000
BOTTLE_HOME = "/home/agent"
BOTTLE_WORKSPACE = "/workspace"
SOCKETS_DIR = "/run/bot-bottle"
INIT_DIR = "/run/bot-bottle-init"
TOOLS_ROOT = "/opt/bot-bottle"
FORWARDER = Path(__file__).with_name("forwarder.py")
PYTHON = "/usr/bin/python3"
SETPRIV = "/usr/bin/setpriv"  # util-linux
STAGE = "/tmp/bot-bottle-stage"  # only in the root launcher's staging namespace

ETC_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/localtime",
    "/etc/os-release", "/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates",
    "/etc/alternatives", "/etc/mime.types", "/etc/protocols", "/etc/services",
)  # fmt: skip
MERGED_USR = ("/bin", "/lib", "/lib64", "/lib32", "/sbin", "/libx32")
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Layout:
    """Where one bottle's pieces live on the host, inside its state dir."""

    state_dir: Path

    @property
    def home(self) -> Path:
        return self.state_dir / "home"

    @property
    def etc(self) -> Path:
        return self.state_dir / "etc"

    @property
    def sockets(self) -> Path:
        return self.state_dir / "sockets"

    @property
    def workspace_copy(self) -> Path:
        return self.state_dir / "workspace"

    @property
    def seccomp(self) -> Path:
        return self.state_dir / "seccomp.bpf"

    @property
    def file_modes(self) -> Path:
        return self.state_dir / "file-modes.bpf"

    def workspace(self, spec: BottleSpec) -> Path | None:
        if spec.workspace_mode == "mount":
            return Path(spec.workspace_path)
        if spec.workspace_mode == "copy":
            return self.workspace_copy
        return None


def merged_usr_args() -> list[str]:
    """`/bin`, `/lib`, ... as the host has them: symlinks into `/usr`, or read-only binds."""
    out: list[str] = []
    for p in MERGED_USR:
        if os.path.islink(p):
            out += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            out += ["--ro-bind", p, p]
    return out


def bottle_env(spec: BottleSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment of the agent process: nothing inherited from the host;
    bot-bottle's proxy and CA variables win over the spec's (`plan.environment`)."""
    path = BASE_PATH
    for t in reversed(spec.tools):
        if t.path_dir:
            path = f"{t.target}/{t.path_dir}:{path}"
    base = {
        "USER": BOTTLE_USER,
        "LOGNAME": BOTTLE_USER,
        "SHELL": "/bin/sh",
        "PATH": path,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "TERM": os.environ.get("TERM", "dumb"),
    }
    return agent_env(spec, BOTTLE_HOME, base, extra)


def bwrap_cmd(
    spec: BottleSpec,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    bwrap: str = "bwrap",
    user: HostUser | None = None,
    views: Sequence[tuple[Path, str]] = (),
    exec_fd: int | None = None,
) -> Cmd:
    """The bwrap invocation that runs `argv` in the bottle, behind the in-bottle
    forwarder that exposes each sidecar at 127.0.0.1:port; as `user`, if given (see
    `as_user`). `views`: host directories shown read-only at a bottle path (the
    bottle's own cgroup, readable by all, so never staged). `exec_fd`, a listening Unix
    socket, is handed to the forwarder, which runs `bot-bottle exec`'s commands beside
    the agent (see `exec_channel`)."""
    lay = Layout(spec.state_dir)
    staged: list[tuple[str, str, bool]] = []  # (host path, name in STAGE, read-only)

    def src(name: str, path: object, ro: bool = False) -> str:
        if user is None:
            return str(path)
        staged.append((str(path), name, ro))
        return f"{STAGE}/{name}"

    a: list[str] = [
        bwrap,
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup", "--unshare-net",
        "--uid", str(BOTTLE_UID), "--gid", str(BOTTLE_UID),
        "--hostname", spec.slug[:63],
        "--die-with-parent",
        "--cap-drop", "ALL",
        "--add-seccomp-fd", f"{FD_PREFIX}seccomp",
        "--add-seccomp-fd", f"{FD_PREFIX}file-modes",
        "--ro-bind", "/usr", "/usr",
        *merged_usr_args(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--tmpfs", "/run",
    ]  # fmt: skip
    for f in ETC_FILES:
        a += ["--ro-bind-try", f, f]
    for name in ("passwd", "group", "hosts"):
        a += ["--ro-bind", src(name, lay.etc / name, ro=True), f"/etc/{name}"]
    a += ["--bind", src("home", lay.home), BOTTLE_HOME]
    ws = lay.workspace(spec)
    if ws is not None:
        a += ["--bind", src("workspace", ws), BOTTLE_WORKSPACE, "--chdir", BOTTLE_WORKSPACE]
        # The files the launch read: read-only, unmovable (`workspace_binds`).
        for i, b in enumerate(workspace_binds(spec)):
            flag = "--ro-bind" if b.read_only else "--bind"
            a += [flag, src(f"read-{i}", b.source, ro=b.read_only), f"{BOTTLE_WORKSPACE}/{b.rel}"]
    else:
        a += ["--chdir", BOTTLE_HOME]
    for i, t in enumerate(spec.tools):
        a += ["--ro-bind", src(f"tool-{i}", t.source, ro=True), t.target]
    a += ["--ro-bind", src("forwarder", FORWARDER, ro=True), f"{INIT_DIR}/forwarder.py"]
    for host_dir, at in views:
        a += ["--ro-bind", str(host_dir), at]
    if spec.sidecars:
        a += ["--ro-bind", src("sockets", lay.sockets, ro=True), SOCKETS_DIR]
    a += ["--", PYTHON, "-I", "-S", f"{INIT_DIR}/forwarder.py"]
    for s in spec.sidecars:
        a.append(f"{s.port}={SOCKETS_DIR}/{s.socket.name}")
    if exec_fd is not None:
        a += ["exec", f"{FD_PREFIX}exec"]
    a += ["--", *argv]
    if user is not None:
        a = [*as_user(user, staged, bwrap=bwrap), *a]
    fds = {"seccomp": str(lay.seccomp), "file-modes": str(lay.file_modes)}
    handed = {"exec": exec_fd} if exec_fd is not None else {}
    return Cmd(tuple(a), env=dict(env), fd_files=fds, hand_fds=handed)


def as_user(user: HostUser, staged: Sequence[tuple[str, str, bool]], *, bwrap: str = "bwrap"
            ) -> list[str]:  # fmt: skip
    """The prefix that makes a root launcher's sandbox run as `user` (never as root:
    files the agent leaves must not be root's). bwrap itself must run as `user` for
    that, but the bottle's files sit in root-only directories (the state dir, the
    agents prefix under root's HOME) that `user` cannot walk to. So a first bwrap,
    still root, makes a mount namespace where each of them is also bound under
    `STAGE` (reachable, on a tmpfs over /tmp that only this namespace sees), then
    `setpriv` drops to `user` (no groups, no new privileges) and runs the bottle's
    bwrap, which binds them from there. The host's mounts are untouched."""
    # Its own PID namespace too: when the launcher dies, this bwrap dies
    # (--die-with-parent), and with the namespace's init every process in it. The
    # inner bwrap's own --die-with-parent did not reliably fire across the privilege
    # drop (seen: the sandbox outliving a killed launcher).
    out = [bwrap, "--dev-bind", "/", "/", "--unshare-pid", "--die-with-parent",
           "--perms", "0755", "--tmpfs", "/tmp", "--perms", "0711", "--dir", STAGE]  # fmt: skip
    for path, name, ro in staged:
        out += ["--ro-bind" if ro else "--bind", path, f"{STAGE}/{name}"]
    out += ["--", SETPRIV, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--no-new-privs", "--"]  # fmt: skip
    return out
