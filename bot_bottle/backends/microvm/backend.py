"""`MicrovmBackend`: the agent in a QEMU `-M microvm` guest under its own kernel, with no
network device.

What a bottle is made of, all started by `attach` and gone when it returns:
- QEMU (`qemu.py`) as a uid of its own (`VMM`) with no capabilities, under
  `setpriv --pdeathsig` so it dies with its launcher however that ends, booting the
  cached guest (`images/guest`) read-only from descriptors it inherits;
- one virtiofsd per share (`virtiofs.py`), serving the bottle's HOME (kept in its
  state dir, as on the namespace backend) and its workspace (the host directory, or the
  copy in the state dir) to the guest, unable to make set-id files or device nodes;
- the host channel (`channel.py`): a socket pair, one end given to QEMU as a virtio
  serial port, the other served in this process, which connects each stream the guest
  opens to the sidecar socket of its port, and nothing else.
The agent's terminal is a virtio console on QEMU's stdio; the guest's serial console
goes through this process into `vm/console.log`, at most `capped_log.CAP` of it and its
end, where the guest's stage 2 (`images/guest/bottle.sh`) writes the agent's exit status
behind a nonce the agent cannot read.

Provisioning writes on the host, like the namespace backend's: HOME and the workspace
are host directories the guest mounts, so `put_file` goes through `ConfinedDir`.

Longer than 300 lines: one method per step of the `Backend` protocol, and `attach`
assembles the VM's parts (shares, channel, descriptors) in one place, so that each
one's cleanup sits beside its start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backends.host_tree import chown_tree, copy_workspace
from bot_bottle.backends.host_user import HostUser, agent_host_user, launcher_is_root
from bot_bottle.backends.microvm import capped_log, exec_client, limits, provision_disk, virtiofs
from bot_bottle.backends.microvm.accel import Accel, chosen, probe
from bot_bottle.backends.microvm.channel import serve_connected, serving_exec
from bot_bottle.backends.microvm.guest_inputs import exit_status, guest_files
from bot_bottle.backends.microvm.qemu import (
    QEMU,
    SETPRIV,
    VmConfig,
    argv,
    host_tsc_khz,
    vmm_prefix,
)
from bot_bottle.backends.microvm.target import Layout, MicrovmTarget
from bot_bottle.backends.microvm.terminal import following_size
from bot_bottle.backends.microvm.virtiofs import VIRTIOFSD
from bot_bottle.backends.namespace.exec_channel import socket_path
from bot_bottle.backends.spec import (
    Availability,
    BottleSpec,
    Capabilities,
    Readiness,
)
from bot_bottle.errors import BackendUnavailable, BotBottleError, UnsafeWorkspace
from bot_bottle.executor import Cmd, Executor
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.sidecars.process import alive

# QEMU and virtiofsd get nothing of the launcher's environment but these.
_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
DOCTOR = "run `bot-bottle doctor` to see what this host is missing"


@dataclass(frozen=True)
class Guest:
    """What one bottle's VM boots: the accelerator, kernel and initramfs, and root."""

    accel: Accel
    files: BootFiles
    root: Path


class MicrovmBackend:
    """QEMU microVMs: own kernel, no network device, sidecars through the host channel."""

    id = "microvm"
    # Its root is exported from a bundled image, never a bottle's own `dockerfile`: so
    # `auto` must not pick it for one (it could only refuse the Dockerfile).
    capabilities = Capabilities(images=False, host_agents=False)

    def __init__(self, executor: Executor, cache: Path | None = None) -> None:
        self._executor = executor
        self._cache = cache
        self._availability: Availability | None = None
        self._guests: dict[str, Guest] = {}

    def _cache_dir(self) -> Path:
        from bot_bottle.images.guest.store import cache_dir

        return self._cache or cache_dir()

    # ------------------------------------------------------------ availability

    def probe(self) -> Availability:
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    def _probe(self) -> Availability:
        missing = []
        if shutil.which(QEMU) is None:
            missing.append(f"{QEMU} (apt-get install qemu-system-x86)")
        if not os.access(VIRTIOFSD, os.X_OK):
            missing.append(f"{VIRTIOFSD} (apt-get install qemu-system-common)")
        if not os.access(SETPRIV, os.X_OK):
            missing.append(f"{SETPRIV} (util-linux)")
        if not launcher_is_root():
            missing.append("root: virtiofsd, which shares HOME and the workspace with the "
                           "guest, runs only as root here")  # fmt: skip
        if missing:
            return Availability(False, "cannot run a microVM here", missing)
        accel = self._accel(fetch=False)
        if accel is None:
            return Availability(True, "QEMU microvm, own kernel, no NIC; the guest kernel is "
                                      "fetched at the first run")  # fmt: skip
        if not accel.works:
            return Availability(False, f"no accelerator boots the guest: {accel.detail}",
                                ["a working QEMU (see `bot-bottle doctor`)"])  # fmt: skip
        return Availability(True, f"QEMU microvm, own kernel, no NIC; {accel_line(accel)}")

    def _accel(self, fetch: bool) -> Accel | None:
        """The accelerator a VM uses (KVM if a real boot works, else TCG), or None when
        the guest kernel is not here yet and `fetch` is false."""
        from bot_bottle.images.guest.store import cached_boot, ensure_boot

        if fetch:
            files, _ = ensure_boot(self._executor, _progress, self._cache_dir())
        else:
            found = cached_boot(self._executor, self._cache_dir())
            if found is None:
                return None
            files = found
        accels = probe(files, self._executor, self._cache_dir())
        return chosen(accels) or accels[-1]

    def readiness(self, spec: BottleSpec) -> Readiness:
        blockers: list[BotBottleError] = []
        notes: list[str] = []
        try:
            agent_host_user(spec.workspace_mode, spec.workspace_path)
        except UnsafeWorkspace as e:
            blockers.append(e)
        if spec.dockerfile:
            blockers.append(BackendUnavailable(
                "a custom agent Dockerfile is not supported on the microvm backend yet",
                "use `backend: docker` for this bottle"))  # fmt: skip
        blockers += limits.refusals(spec)
        if not spec.dockerfile:
            notes += self._root_notes(spec)
        accel = self._accel(fetch=False) if self.probe().ok else None
        if accel is not None and accel.name == "tcg":
            notes.append("TCG: no hardware acceleration (KVM does not boot the guest here); "
                         "the agent runs several times slower than natively")  # fmt: skip
        return Readiness(tuple(blockers), tuple(notes))

    def _root_notes(self, spec: BottleSpec) -> list[str]:
        """A guest root still to make is said before the launch: it takes minutes."""
        from bot_bottle.images.guest.store import cached_root_for

        try:
            if cached_root_for(spec.image or "general", "", self._cache_dir()) is not None:
                return []
        except BackendUnavailable as e:
            return [f"the guest root for image {spec.image or 'general'} is not made and "
                    f"cannot be yet: {e.message}"]  # fmt: skip
        return [f"the guest root for image {spec.image or 'general'} will be made first "
                "(the Docker agent image exported to erofs: a minute or more, once)"]  # fmt: skip

    def require(self) -> None:
        av = self.probe()
        if not av.ok:
            need = f" (missing: {'; '.join(av.missing)})" if av.missing else ""
            raise BackendUnavailable(f"microvm backend unavailable: {av.detail}{need}", DOCTOR)

    # ------------------------------------------------------------ lifecycle

    def _guest(self, spec: BottleSpec) -> Guest:
        """What the bottle's VM boots, fetched or built now if missing (with progress):
        before the sidecars start, so they never wait on a download."""
        from bot_bottle.images.guest.store import ensure_boot, ensure_root_for

        if spec.slug not in self._guests:
            accel = self._accel(fetch=True)
            assert accel is not None
            if not accel.works:
                raise BackendUnavailable(f"no accelerator boots the guest: {accel.detail}", DOCTOR)
            files, _ = ensure_boot(self._executor, _progress, self._cache_dir())
            root = ensure_root_for(spec.image or "general", spec.dockerfile, self._executor,
                                   _progress, cache=self._cache_dir()).path  # fmt: skip
            self._guests[spec.slug] = Guest(accel, files, root)
        return self._guests[spec.slug]

    def prepare(self, spec: BottleSpec) -> MicrovmTarget:
        self.require()
        user = _user(spec)
        self._guest(spec)
        lay = Layout(spec.state_dir)
        lay.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if lay.home.stat().st_uid != user.uid:
            chown_tree(lay.home, user)
        lay.vm.mkdir(exist_ok=True, mode=0o700)
        if spec.workspace_mode == "copy":
            copy_workspace(spec.workspace_path, lay.workspace_copy, user)
        if spec.workspace_mode == "mount" and not Path(spec.workspace_path).is_dir():
            raise ValueError(f"workspace {spec.workspace_path} is not a directory")
        return MicrovmTarget(spec, user)

    def launch(self, spec: BottleSpec) -> None:
        self.require()

    def attach(self, spec: BottleSpec, argv_: Sequence[str], *, tty: bool = True) -> int:
        self.require()
        guest = self._guest(spec)
        user = _user(spec)
        lay = Layout(spec.state_dir)
        nonce = secrets.token_hex(16)
        workspace = lay.workspace(spec)
        disk = provision_disk.write(
            guest_files(spec, argv_, user, nonce, workspace is not None), lay.vm / "provision.tar"
        )
        shares = [("home", lay.home)] + ([("workspace", workspace)] if workspace else [])
        pidfile = spec.state_dir / "attached.pid"
        log = lay.vm / "console.log"
        with contextlib.ExitStack() as stack:
            # QEMU runs as a uid of its own: it reads its files through descriptors it
            # inherits (the state and cache dirs stay root's), handed over by number and
            # closed here once it started. The console it writes into a socket whose
            # other end this process records, bounded (a guest can write without end).
            console = stack.enter_context(capped_log.socket_into(log))
            opened = {name: _open(path) for name, path in (
                ("kernel", guest.files.kernel.vmlinuz), ("initramfs", guest.files.initramfs),
                ("root", guest.root), ("provision", disk))}  # fmt: skip
            fdpath = {name: Path(f"/proc/self/fd/{each}") for name, each in opened.items()}
            sockets = tuple(
                (tag, stack.enter_context(virtiofs.serving(self._executor, lay.vm, tag, src)))
                for tag, src in shares
            )
            host_end, qemu_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            stack.callback(host_end.close)
            qemu_fd = qemu_end.detach()  # the executor hands it to QEMU and closes ours
            routes = {s.port: s.socket for s in spec.sidecars}
            cfg = VmConfig(
                guest.accel.name, fdpath["kernel"], fdpath["initramfs"], root=fdpath["root"],
                memory_mb=limits.memory_mb(spec.memory), cpus=limits.vcpus(spec.cpus),
                tsc_khz=host_tsc_khz(_read("/proc/cpuinfo")), mux_ports=tuple(routes),
                provision=fdpath["provision"], bottle=True, shares=sockets,
                console_fd=console.fd,
                channel_fd=qemu_fd,
                kernel_args=(f"bb.user={user.uid}:{user.gid}", f"bb.tty={_tty_arg(tty)}"),
            )  # fmt: skip
            pidfile.write_text(str(os.getpid()))
            stack.callback(pidfile.unlink, missing_ok=True)
            mux = serve_connected(host_end, routes)
            stack.enter_context(serving_exec(socket_path(spec.state_dir), mux))
            if _tty_arg(tty) != "raw":
                stack.enter_context(following_size(mux))
            fds = {"channel": qemu_fd, "console": console.fd, **dict(sockets), **opened}
            cmd = Cmd((*vmm_prefix(guest.accel.name), *argv(cfg)), env=_ENV, hand_fds=fds)
            rc = self._executor.interactive(cmd)
        # The end of the console as read, kept in memory: the file may be cut short.
        return exit_status(rc, console.recorder.tail_text(), nonce)

    def exec_in(self, spec: BottleSpec, argv_: Sequence[str], *, tty: bool) -> int:
        """`argv_` beside the agent, run by the guest's root service as the agent
        (`exec_client`, `images/guest/exec_service.py`); its exit code."""
        return exec_client.exec_in(spec.state_dir, spec.slug, argv_, tty=tty)

    def is_running(self, spec: BottleSpec) -> bool:
        try:
            pid = int((spec.state_dir / "attached.pid").read_text())
        except (OSError, ValueError):
            return False
        return alive(pid)

    def stop(self, spec: BottleSpec) -> None:
        """QEMU and virtiofsd die with the launcher (`attach` stops them on its way
        out, and `--pdeathsig` kills QEMU if the launcher is killed outright)."""

    def preserve(self, spec: BottleSpec) -> None:
        """HOME and the workspace copy live in the state dir already."""

    def resume(self, spec: BottleSpec) -> MicrovmTarget:
        return self.prepare(spec)

    def remove(self, spec: BottleSpec) -> None:
        lay = Layout(spec.state_dir)
        for p in (lay.home, lay.vm, lay.workspace_copy):
            shutil.rmtree(p, ignore_errors=True)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _user(spec: BottleSpec) -> HostUser:
    user = agent_host_user(spec.workspace_mode, spec.workspace_path)
    if user is None:  # not root: `probe` has refused already
        raise BackendUnavailable("the microvm backend needs a root launcher", DOCTOR)
    return user


def accel_line(accel: Accel) -> str:
    if accel.name == "tcg":
        return "TCG: no hardware acceleration"
    return f"{accel.name.upper()}: hardware acceleration"


def _tty_arg(tty: bool) -> str:
    if tty and os.isatty(0):
        size = os.get_terminal_size(0)
        return f"{size.lines}x{size.columns}"
    return "raw"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _progress(line: str) -> None:
    print(f"bot-bottle: {line}", file=sys.stderr)
