"""`NamespaceBackend`: the agent under bubblewrap, its state in the bottle's state dir.

There is no long-lived runtime: the sandbox exists while `attach` runs, and dies
with the launcher (`--die-with-parent`). HOME and the workspace copy persist in
the state dir, which is what `--keep`/`resume` keep.

Longer than 300 lines because the backend protocol's steps (probe, prepare, attach,
exec, resources through the cgroup, stop, remove) all act on the same bwrap command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle.backends.host_dirs import HostDirs
from bot_bottle.backends.host_tree import chown_tree, copy_workspace
from bot_bottle.backends.host_user import (
    DEDICATED,
    agent_host_user,
    launcher_is_root,
)
from bot_bottle.backends.namespace import (
    cgroup,
    exec_channel,
    file_modes,
    orphans,
    sandbox,
    seccomp,
    verdict,
)
from bot_bottle.backends.namespace.sandbox import (
    BOTTLE_HOME,
    BOTTLE_UID,
    BOTTLE_USER,
    BOTTLE_WORKSPACE,
    Layout,
)
from bot_bottle.backends.spec import Availability, BottleSpec, Capabilities, Readiness
from bot_bottle.errors import BackendUnavailable, UnsafeWorkspace
from bot_bottle.executor import Cmd, CommandResult, Executor, ProcessExecutor
from bot_bottle.sidecars.process import alive

DOCTOR = "run `bot-bottle doctor` to see what this host is missing"
AVAILABLE = (
    "bubblewrap: user/mount/pid/ipc/uts/cgroup/net namespaces, no capabilities, "
    "seccomp deny list; shares the host kernel"
)


class NamespaceTarget:
    """Provisioning into a namespace bottle: files land directly in the state dir's
    HOME or the workspace (no sandbox needed); commands run in a one-shot sandbox."""

    def __init__(self, backend: NamespaceBackend, spec: BottleSpec) -> None:
        self._backend = backend
        self._spec = spec
        self._layout = Layout(spec.state_dir)
        user = agent_host_user(spec.workspace_mode, spec.workspace_path)
        self._dirs = HostDirs(self._layout.home, self._layout.workspace(spec),
                              (user.uid, user.gid) if user else None,
                              BOTTLE_HOME, BOTTLE_WORKSPACE)  # fmt: skip

    def ready(self) -> None:
        """Nothing runs in the background: `prepare` returned a finished bottle."""

    @property
    def home(self) -> str:
        return BOTTLE_HOME

    @property
    def workspace(self) -> str:
        return BOTTLE_WORKSPACE if self._layout.workspace(self._spec) else ""

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._dirs.put_file(path, data, mode)

    def read_file(self, path: str, limit: int) -> bytes | None:
        return self._dirs.read_file(path, limit)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        return self._backend.run(self._spec, argv, env=env)


class NamespaceBackend:
    """Bubblewrap with new user, mount, PID, IPC, UTS, cgroup and network namespaces,
    no capabilities and a seccomp deny list (see `sandbox.py`, `seccomp.py`)."""

    id = "namespace"
    capabilities = Capabilities(images=False, host_agents=True)

    def __init__(
        self, executor: Executor | None = None, bwrap: str | None = None,
        verdicts: Path | None = None,
    ) -> None:  # fmt: skip
        self.executor = executor or ProcessExecutor()
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        # Where the probe's success is kept (`verdict.py`); None: probe every time.
        self.verdicts = verdicts
        self._availability: Availability | None = None

    # ------------------------------------------------------------ availability

    def probe(self) -> Availability:
        """Whether bwrap can build a sandbox here, tested once per backend instance: the
        launcher probes when it chooses the backend, and `launch`/`attach` check again;
        re-running bwrap each time would cost the start-up path a few ms per check."""
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    def _probe(self) -> Availability:
        missing = []
        if shutil.which(self.bwrap) is None:
            missing.append("bubblewrap (apt install bubblewrap)")
        if not os.path.exists(sandbox.PYTHON):
            missing.append(f"{sandbox.PYTHON} (runs the in-bottle forwarder)")
        if launcher_is_root() and not os.path.exists(sandbox.SETPRIV):
            missing.append(f"{sandbox.SETPRIV} (util-linux; a root launcher drops to the agent's "
                           "user with it)")  # fmt: skip
        if os.uname().machine not in seccomp.ARCHES:
            missing.append(f"seccomp syscall table for {os.uname().machine}")
        if missing:
            return Availability(False, "cannot build a namespace sandbox here", missing)
        # As the user bottles will run as: a root launcher drops privileges first, and
        # then needs unprivileged user namespaces like anyone else.
        prefix = sandbox.as_user(DEDICATED, (), bwrap=self.bwrap) if launcher_is_root() else []
        argv = (*prefix, self.bwrap, "--unshare-user", "--unshare-net", "--unshare-pid",
                "--ro-bind", "/usr", "/usr", *sandbox.merged_usr_args(), "--", "/usr/bin/true")  # fmt: skip
        probe_key = verdict.key(self.bwrap, argv)
        if self.verdicts is not None and verdict.known_good(self.verdicts, probe_key):
            return Availability(True, AVAILABLE)
        with self._reaping():
            r = self.executor.run(Cmd(argv), timeout=10)
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["bwrap failed"])[-1]
            return Availability(
                False, f"bubblewrap cannot create namespaces: {why}",
                ["unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
                 "or kernel.apparmor_restrict_unprivileged_userns=0)"],
            )  # fmt: skip
        if self.verdicts is not None:
            verdict.remember(self.verdicts, probe_key)
        return Availability(True, AVAILABLE)

    def require(self) -> None:
        """Raise `BackendUnavailable` unless a sandbox can be built; never degrade."""
        av = self.probe()
        if not av.ok:
            need = f" (missing: {'; '.join(av.missing)})" if av.missing else ""
            raise BackendUnavailable(f"namespace backend unavailable: {av.detail}{need}", DOCTOR)

    def readiness(self, spec: BottleSpec) -> Readiness:
        """What `prepare` would refuse, asked before anything starts: a workspace a root
        launcher cannot hand to anyone but root."""
        try:
            agent_host_user(spec.workspace_mode, spec.workspace_path)
        except UnsafeWorkspace as e:
            return Readiness(blockers=(e,))
        return Readiness()

    # ------------------------------------------------------------ lifecycle

    def prepare(self, spec: BottleSpec) -> NamespaceTarget:
        user = agent_host_user(spec.workspace_mode, spec.workspace_path)  # refuses early
        self._cgroup(spec)  # refuses limits it cannot enforce, before any work
        lay = Layout(spec.state_dir)
        for d in (lay.home, lay.etc, lay.sockets):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if user is not None:
            # The agent's user owns its HOME and may reach (not list) the sockets dir;
            # the rest of the state dir stays root's.
            if lay.home.stat().st_uid != user.uid:  # new, or kept under another user
                chown_tree(lay.home, user)
            lay.sockets.chmod(0o711)
        for s in spec.sidecars:
            if s.socket.parent != lay.sockets:
                raise ValueError(f"sidecar socket {s.socket} must live in {lay.sockets}")
        lay.seccomp.write_bytes(seccomp.compile_bpf())
        lay.file_modes.write_bytes(file_modes.compile_bpf())
        (lay.etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{BOTTLE_USER}:x:{BOTTLE_UID}:{BOTTLE_UID}:bot-bottle agent:{BOTTLE_HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (lay.etc / "group").write_text(
            f"root:x:0:\n{BOTTLE_USER}:x:{BOTTLE_UID}:\nnogroup:x:65534:\n"
        )
        (lay.etc / "hosts").write_text(
            f"127.0.0.1 localhost {spec.slug[:63]}\n::1 localhost ip6-localhost\n"
        )
        if spec.workspace_mode == "copy":
            copy_workspace(spec.workspace_path, lay.workspace_copy, user)
        if spec.workspace_mode == "mount" and not Path(spec.workspace_path).is_dir():
            raise ValueError(f"workspace {spec.workspace_path} is not a directory")
        return NamespaceTarget(self, spec)

    def launch(self, spec: BottleSpec) -> None:
        self.require()

    def env(self, spec: BottleSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return sandbox.bottle_env(spec, extra)

    def attach(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool = True) -> int:
        self.require()
        pidfile = spec.state_dir / "attached.pid"
        pidfile.write_text(str(os.getpid()))
        listener = exec_channel.listen(spec.state_dir)  # for `bot-bottle exec`
        try:
            with self._limited(spec) as group:
                try:
                    cmd = self._cmd(spec, argv, self.env(spec), group, exec_fd=listener)
                except BaseException:
                    os.close(listener)
                    raise
                # Its init is reaped by `stop`, while the rest of the launch's cleanup ran.
                with self._reaping(wait=False):
                    return self.executor.interactive(cmd)  # closes our copy of `listener`
        finally:
            pidfile.unlink(missing_ok=True)
            exec_channel.socket_path(spec.state_dir).unlink(missing_ok=True)

    def exec_in(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool) -> int:
        """Run `argv` beside the running agent, forked inside its sandbox by the
        forwarder (see `exec_channel`); its exit code."""
        return exec_channel.exec_in(spec.state_dir, spec.slug, argv, tty=tty)

    def run(
        self, spec: BottleSpec, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        """Run `argv` in a one-shot sandbox with the bottle's view, output captured."""
        with self._limited(spec) as group, self._reaping():
            return self.executor.run(self._cmd(spec, argv, self.env(spec, env), group))

    def _reaping(self, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        """Real sandboxes orphan their PID namespace's init: reap it (`orphans`)."""
        if isinstance(self.executor, ProcessExecutor):
            return orphans.reaping(wait)
        return contextlib.nullcontext()

    def _cgroup(self, spec: BottleSpec) -> cgroup.Cgroup | None:
        return cgroup.for_bottle(spec.slug, spec.cpus, spec.memory)

    def _limited(self, spec: BottleSpec) -> contextlib.AbstractContextManager[cgroup.Cgroup | None]:
        return cgroup.held(self._cgroup(spec))

    def _cmd(
        self,
        spec: BottleSpec,
        argv: Sequence[str],
        env: Mapping[str, str],
        group: cgroup.Cgroup | None = None,
        exec_fd: int | None = None,
    ) -> Cmd:
        """The bwrap command, as the agent's host user, in the bottle's cgroup if it has
        one; that user is given the sidecar sockets the launcher's sidecars created
        (they are root's when it is root). `exec_fd`: see `sandbox.bwrap_cmd`."""
        user = agent_host_user(spec.workspace_mode, spec.workspace_path)
        if user is not None:
            for s in spec.sidecars:
                if s.socket.exists():
                    os.chown(s.socket, user.uid, user.gid, follow_symlinks=False)
        views = tuple(zip(group.dirs, group.views, strict=True)) if group else ()
        cmd = sandbox.bwrap_cmd(
            spec, argv, env, bwrap=self.bwrap, user=user, views=views, exec_fd=exec_fd
        )
        return dataclasses.replace(cmd, argv=group.enter(cmd.argv)) if group else cmd

    def is_running(self, spec: BottleSpec) -> bool:
        try:
            pid = int((spec.state_dir / "attached.pid").read_text())
        except (OSError, ValueError):
            return False
        return alive(pid)

    def stop(self, spec: BottleSpec) -> None:
        """The sandbox dies with its launcher; the launcher is stopped by the caller.
        What is left is the init `attach` orphaned, exiting: reaped here."""
        if isinstance(self.executor, ProcessExecutor):
            orphans.reap()

    def preserve(self, spec: BottleSpec) -> None:
        """Nothing to do: HOME and the workspace copy already live in the state dir."""

    def resume(self, spec: BottleSpec) -> NamespaceTarget:
        return self.prepare(spec)

    def remove(self, spec: BottleSpec) -> None:
        lay = Layout(spec.state_dir)
        for p in (lay.home, lay.etc, lay.sockets, lay.workspace_copy):
            shutil.rmtree(p, ignore_errors=True)
        lay.seccomp.unlink(missing_ok=True)
        lay.file_modes.unlink(missing_ok=True)
