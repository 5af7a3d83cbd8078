"""What every backend is: a runtime that turns a `BottleSpec` into a running sandbox.

A backend knows its runtime (bubblewrap, Docker, ...) and nothing about providers:
it receives generic values (env, paths, sidecar sockets) from the launcher. Every
external command it runs is a `Cmd` value handed to an `Executor`, so the argv it
builds is unit-testable without the runtime (`RecordingExecutor`).

Backends register by a stable id in `REGISTRY`, the same way an outside plugin would
(`register("docker", factory)`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot_bottle.provision.target import CommandResult, Target

# ---------------------------------------------------------------- commands as values

FD_PREFIX = "@fd:"
"""An argv token `@fd:NAME` is replaced by the number of the descriptor the executor
opened for `Cmd.fd_files[NAME]` (e.g. bwrap's `--seccomp @fd:seccomp`)."""


@dataclass(frozen=True)
class Cmd:
    """One external command. `env=None` inherits the caller's environment, which a
    backend must never do for a sandboxed process (it would leak host variables)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    stdin: bytes | None = None
    fd_files: Mapping[str, str] = field(default_factory=dict)


class Executor(Protocol):
    """Runs `Cmd`s. Production spawns them; tests record them."""

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        """Run to completion with stdout/stderr captured."""

    def interactive(self, cmd: Cmd) -> int:
        """Run attached to this terminal; forward signals; return its exit code."""

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> subprocess.Popen[bytes]:
        """Start in the background (own process group by default) and return it."""


def _resolve_fds(cmd: Cmd) -> tuple[list[str], list[int]]:
    fds: dict[str, int] = {}
    for name, path in cmd.fd_files.items():
        fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    argv = [str(fds[a[len(FD_PREFIX) :]]) if a.startswith(FD_PREFIX) else a for a in cmd.argv]
    return argv, list(fds.values())


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        os.close(fd)


class ProcessExecutor:
    """The real executor: `subprocess`, with `fd_files` opened and passed by number."""

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        argv, fds = _resolve_fds(cmd)
        try:
            p = subprocess.run(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                input=cmd.stdin,
                capture_output=True,
                pass_fds=fds,
                timeout=timeout,
                check=False,
            )
        finally:
            _close(fds)
        return CommandResult(
            p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        )

    def interactive(self, cmd: Cmd) -> int:
        """Child shares our TTY and process group, so the terminal delivers ^C and
        SIGWINCH to it directly; we ignore SIGINT/SIGQUIT meanwhile and forward
        SIGTERM/SIGHUP. Exit code: the child's, or 128+signal."""
        argv, fds = _resolve_fds(cmd)
        try:
            p = subprocess.Popen(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                pass_fds=fds,
                stdin=None if cmd.stdin is None else subprocess.PIPE,
            )
        finally:
            _close(fds)
        forwarded = (signal.SIGTERM, signal.SIGHUP)
        old = {s: signal.getsignal(s) for s in (*forwarded, signal.SIGINT, signal.SIGQUIT)}
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGQUIT, signal.SIG_IGN)
            for s in forwarded:
                signal.signal(s, lambda n, _f: p.send_signal(n))
            if cmd.stdin is not None and p.stdin:
                p.stdin.write(cmd.stdin)
                p.stdin.close()
            rc = p.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return 128 - rc if rc < 0 else rc

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> subprocess.Popen[bytes]:
        argv, fds = _resolve_fds(cmd)
        try:
            return subprocess.Popen(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
            )
        finally:
            _close(fds)


@dataclass
class RecordingExecutor:
    """Test double: records every `Cmd`; answers `run` from `results` (by argv[0]) or 0."""

    calls: list[Cmd] = field(default_factory=list)
    results: dict[str, CommandResult] = field(default_factory=dict)

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        self.calls.append(cmd)
        return self.results.get(cmd.argv[0], CommandResult(0, "", ""))

    def interactive(self, cmd: Cmd) -> int:
        self.calls.append(cmd)
        return 0

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> subprocess.Popen[bytes]:
        self.calls.append(cmd)
        return subprocess.Popen(["true"])


# ---------------------------------------------------------------- what a backend gets


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, a one-line `detail` (what isolation it gives, or
    why not), and the `missing` pieces a user would install or enable."""

    ok: bool
    detail: str
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SidecarLink:
    """A sidecar the agent reaches: the host listens on Unix socket `socket`; inside the
    bottle it appears at `127.0.0.1:port` (the backend provides the forwarding)."""

    name: str  # "egress", "git-gate", ...
    socket: Path
    port: int


@dataclass(frozen=True)
class ToolMount:
    """A host directory the bottle sees read-only at `target`; `path_dir` (inside
    `target`) is prepended to PATH when set (e.g. the npm-installed agent CLIs)."""

    source: Path
    target: str
    path_dir: str = ""


@dataclass(frozen=True)
class BottleSpec:
    """Everything a backend needs to run one bottle; generic, no provider knowledge.

    `state_dir` is the bottle's private state directory (the backend keeps its HOME,
    workspace copy and runtime files there). `env` is the agent's environment without
    proxy/CA variables: the backend adds those with `network_env`, since only it knows
    where the forwarded proxy and the trust bundle appear inside.
    """

    slug: str
    state_dir: Path
    workspace_mode: str  # mount | copy | none
    workspace_path: str  # host path; "" for none
    env: Mapping[str, str] = field(default_factory=dict)
    sidecars: tuple[SidecarLink, ...] = ()
    tools: tuple[ToolMount, ...] = ()
    image: str = ""
    dockerfile: str = ""
    cpus: float | None = None
    memory: str | None = None
    read_only: tuple[str, ...] = ()  # host paths inside a mounted workspace: see workspace_binds

    def sidecar(self, name: str) -> SidecarLink | None:
        return next((s for s in self.sidecars if s.name == name), None)


@dataclass(frozen=True)
class WorkspaceBind:
    """A bind over the mounted workspace: `source` (a host path) at `rel` inside it."""

    source: str
    rel: str
    read_only: bool


def workspace_binds(spec: BottleSpec) -> tuple[WorkspaceBind, ...]:
    """What keeps the files a launch read (`spec.read_only`: manifest, prompt file,
    CA, ...) out of the agent's reach in a mounted workspace, parents before children.

    Each is bound read-only over itself, so writing, chmod and hard links fail, and
    unlink or rename fail too: a mount point cannot be moved (EBUSY). Every directory
    between it and the workspace root is bound over itself, writable: renaming that
    directory away (and putting the agent's own in its place) fails the same way."""
    if spec.workspace_mode != "mount" or not spec.workspace_path:
        return ()
    root = os.path.realpath(spec.workspace_path)
    protected: dict[str, bool] = {}
    for path in spec.read_only:
        rel = os.path.relpath(path, root)
        if rel == "." or rel.startswith(".."):
            continue
        parts = rel.split(os.sep)
        for i in range(1, len(parts)):
            protected.setdefault(os.path.join(*parts[:i]), False)
        protected[rel] = True
    ordered = sorted(protected, key=lambda r: (r.count(os.sep), r))
    return tuple(WorkspaceBind(os.path.join(root, r), r, protected[r]) for r in ordered)


TRUST_BUNDLE = "~/.bot-bottle/ca-bundle.pem"
"""Where provisioning puts the bottle's trust bundle (system CAs + the egress CA)."""

CA_VARIABLES = (
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
    "CODEX_CA_CERTIFICATE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE",
)  # fmt: skip


def network_env(spec: BottleSpec, home: str) -> dict[str, str]:
    """Proxy and CA variables every backend sets the same way: HTTP(S)_PROXY at the
    forwarded egress port, NO_PROXY for loopback only, CA variables at the bundle."""
    out: dict[str, str] = {}
    egress = spec.sidecar("egress")
    if egress is not None:
        url = f"http://127.0.0.1:{egress.port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            out[name] = out[name.lower()] = url
        out["NO_PROXY"] = out["no_proxy"] = "localhost,127.0.0.1,::1"
    bundle = TRUST_BUNDLE.replace("~", home, 1)
    for name in CA_VARIABLES:
        out[name] = bundle
    return out


# ---------------------------------------------------------------- the protocol


class Backend(Protocol):
    """A sandbox runtime. Lifecycle on one bottle's state dir:

    `prepare` (state, HOME, workspace copy; returns the `Target` provisioning writes
    through) -> `launch` (start long-lived parts, if any) -> `attach` (run the agent
    on this terminal, return its exit code) -> `stop` -> `preserve` (keep for resume)
    or `remove`. `resume` re-opens a preserved bottle and returns its Target.
    """

    id: str

    def probe(self) -> Availability: ...

    def prepare(self, spec: BottleSpec) -> Target: ...

    def launch(self, spec: BottleSpec) -> None: ...

    def attach(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool = True) -> int: ...

    def stop(self, spec: BottleSpec) -> None: ...

    def preserve(self, spec: BottleSpec) -> None: ...

    def resume(self, spec: BottleSpec) -> Target: ...

    def remove(self, spec: BottleSpec) -> None: ...

    def is_running(self, spec: BottleSpec) -> bool: ...


BackendFactory = Callable[[Executor], Backend]

REGISTRY: dict[str, BackendFactory] = {}


def register(backend_id: str, factory: BackendFactory) -> None:
    """Add a backend under a stable id (built-ins and plugins alike)."""
    REGISTRY[backend_id] = factory


def _load_builtins() -> None:
    # Imported lazily so `bot-bottle --help` stays fast and a broken optional backend
    # cannot break the others.
    import importlib

    for module in ("bot_bottle.backends.namespace", "bot_bottle.backends.docker"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                print(f"bot-bottle: backend module {module} failed to import: {e}", file=sys.stderr)
        except ImportError as e:  # pragma: no cover
            print(f"bot-bottle: backend module {module} failed to import: {e}", file=sys.stderr)


def get(backend_id: str, executor: Executor | None = None) -> Backend:
    """The backend registered as `backend_id`, built with `executor`."""
    from bot_bottle.errors import BackendUnavailable

    _load_builtins()
    if backend_id not in REGISTRY:
        raise BackendUnavailable(
            f"unknown backend {backend_id!r} (known: {', '.join(sorted(REGISTRY))})",
            "`bot-bottle doctor` lists the backends this host can run",
        )
    return REGISTRY[backend_id](executor or ProcessExecutor())


def probe_all() -> list[tuple[str, Availability]]:
    """Every registered backend's availability, for `bot-bottle doctor`."""
    _load_builtins()
    out = []
    for backend_id in sorted(REGISTRY):
        try:
            out.append((backend_id, REGISTRY[backend_id](ProcessExecutor()).probe()))
        except Exception as e:  # a probe must never crash doctor
            out.append((backend_id, Availability(False, f"probe failed: {e}", [])))
    return out
