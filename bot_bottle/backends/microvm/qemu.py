"""A VM's QEMU command line as a value: `VmConfig` in, argv out.

Only what the guest needs is on it: `-nodefaults -no-user-config` drop every default
device (no NIC, no VGA, no floppy), `-M microvm` has no PCI bus at all, and devices are
virtio-mmio ones added by name. `-sandbox on,...` confines QEMU itself with seccomp: no
exec, no privilege changes, no obsolete syscalls.
"""

from __future__ import annotations

import base64
import grp
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backends.host_user import HostUser

QEMU = "qemu-system-x86_64"
SETPRIV = "/usr/bin/setpriv"
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
MARKER = "bot-bottle-guest: booted"
# The guest finds its end of the host channel by this name (/sys/class/virtio-ports/*/name).
CHANNEL_NAME = "org.bot-bottle.channel.0"
EXIT_PREFIX = "bot-bottle-guest: exit "


@dataclass(frozen=True)
class VmConfig:
    """One VM: its accelerator (`kvm` or `tcg`), boot files, resources, and either the
    probe mode (boot to the marker, power off) or a root image and a command."""

    accel: str
    kernel: Path
    initramfs: Path
    root: Path | None = None
    command: tuple[str, ...] = ()
    memory_mb: int = 512
    cpus: int = 1
    tsc_khz: int | None = None
    channel: Path | None = None  # a host Unix socket QEMU connects to (the host channel)
    # Loopback ports the guest's forwarder (images/guest/mux.py) serves over the channel.
    mux_ports: tuple[int, ...] = ()
    user: int | None = None  # run the command as this uid (and gid), not as root
    # A tar of files for the guest (the CA, the prompt...), attached read-only as a disk
    # and unpacked by stage 2 into /run/bot-bottle/files before the command runs.
    provision: Path | None = None
    # A bottle (`backend.py`) rather than a test command: its script, user and HOME come
    # on the provision disk, HOME and the workspace are virtiofs `shares` (tag, the
    # a socket connected to its virtiofsd), the agent's terminal is a virtconsole on
    # QEMU's stdio (`terminal`), and the serial console goes to `console_fd`.
    bottle: bool = False
    shares: tuple[tuple[str, int], ...] = ()  # (tag, a socket connected to its virtiofsd)
    console_fd: int | None = None  # a connected socket the launcher records (`capped_log`)
    channel_fd: int | None = None  # a connected socket for the host channel, not a path
    kernel_args: tuple[str, ...] = ()


def kernel_cmdline(cfg: VmConfig) -> str:
    # panic=-1 with -no-reboot: a guest that panics ends QEMU instead of hanging.
    parts = ["console=ttyS0", "quiet", "panic=-1"]
    if cfg.tsc_khz:
        # An early-boot hang under TCG (6 in ~100 boots) stopped with the TSC given.
        parts.append(f"tsc_early_khz={cfg.tsc_khz}")
    if cfg.bottle:
        parts.append("bb.mode=bottle")
        if cfg.mux_ports:
            parts.append("bb.mux=" + ",".join(str(p) for p in cfg.mux_ports))
        return " ".join([*parts, *cfg.kernel_args])
    if cfg.root is None:
        parts.append("bb.mode=probe")
    else:
        parts.append(f"bb.run={encode_command(cfg.command)}")
        if cfg.user is not None:
            parts.append(f"bb.user={cfg.user}")
        if cfg.mux_ports:
            parts.append("bb.mux=" + ",".join(str(p) for p in cfg.mux_ports))
    return " ".join(parts)


def encode_command(argv: Sequence[str]) -> str:
    """The command as a base64 shell line: the kernel command line has no quoting."""
    line = f"exec {shlex.join(argv)}\n" if argv else "true\n"
    return base64.b64encode(line.encode()).decode()


def argv(cfg: VmConfig, qemu: str = QEMU) -> tuple[str, ...]:
    cpu = "host" if cfg.accel == "kvm" else "max"
    machine = "microvm"
    if cfg.shares:
        # vhost-user devices (virtiofsd) map the guest's memory: it must be shareable.
        machine += ",memory-backend=mem"
    if cfg.console_fd is not None:
        serial = ["-display", "none", "-chardev", f"socket,id=log,fd={cfg.console_fd}",
                  "-serial", "chardev:log"]  # fmt: skip
    else:
        serial = ["-nographic", "-serial", "stdio"]
    out = [qemu, "-M", machine, "-accel", cfg.accel, "-cpu", cpu,
           "-m", str(cfg.memory_mb), "-smp", str(cfg.cpus),
           "-nodefaults", "-no-user-config", *serial, "-no-reboot", "-sandbox", SANDBOX,
           # virtio 1.0 devices: the legacy interface is older, and virtiofsd refuses it.
           "-global", "virtio-mmio.force-legacy=off",
           "-kernel", str(cfg.kernel), "-initrd", str(cfg.initramfs)]  # fmt: skip
    if cfg.root is not None:
        out += ["-drive", f"id=root,file={cfg.root},format=raw,if=none,readonly=on",
                "-device", "virtio-blk-device,drive=root,serial=bb-root"]  # fmt: skip
    if cfg.provision is not None:
        out += ["-drive", f"id=provision,file={cfg.provision},format=raw,if=none,readonly=on",
                "-device", "virtio-blk-device,drive=provision,serial=bb-provision"]  # fmt: skip
    if cfg.shares:
        out += ["-object", f"memory-backend-memfd,id=mem,size={cfg.memory_mb}M,share=on"]
        for i, (tag, fd) in enumerate(cfg.shares):
            out += ["-chardev", f"socket,id=fs{i},fd={fd}",
                    "-device", f"vhost-user-fs-device,chardev=fs{i},tag={tag}"]  # fmt: skip
    if cfg.bottle:
        # The agent's terminal: a virtio console (the guest's /dev/hvc0, a real tty) on
        # QEMU's stdin and stdout; `signal=off` passes ^C to the guest as a byte.
        out += ["-device", "virtio-serial-device,id=vser0",
                "-chardev", "stdio,id=term,signal=off",
                "-device", "virtconsole,chardev=term,bus=vser0.0"]  # fmt: skip
        if cfg.channel_fd is not None:
            out += ["-chardev", f"socket,id=channel0,fd={cfg.channel_fd}",
                    "-device", f"virtserialport,chardev=channel0,name={CHANNEL_NAME},bus=vser0.0"]  # fmt: skip
    if cfg.channel is not None:
        # No network device: the guest reaches the host through one virtio serial port,
        # a byte stream QEMU carries to a Unix socket the host listens on (QEMU is the
        # client, so it needs no socket of its own and the host decides who may connect).
        out += ["-device", "virtio-serial-device",
                "-chardev", f"socket,id=channel0,path={cfg.channel},server=off",
                "-device", f"virtserialport,chardev=channel0,name={CHANNEL_NAME}"]  # fmt: skip
    out += ["-append", kernel_cmdline(cfg)]
    return tuple(out)


def host_tsc_khz(cpuinfo: str) -> int | None:
    """The host CPU's clock in kHz from /proc/cpuinfo (`cpu MHz`), or None."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                return int(float(value) * 1000)
            except ValueError:
                return None
    return None


VMM = HostUser(60101, 60101)
"""QEMU's uid and gid: like the agents' `DEDICATED`, belonging to no host user, so a
guest that broke out of QEMU's device emulation would own nothing on the host."""


def vmm_prefix(accel: str) -> tuple[str, ...]:
    """How QEMU is started: as `VMM`, no other groups (but `kvm` for /dev/kvm), no
    capabilities, no-new-privs, killed when its launcher dies (set after the uid
    change, which would clear it)."""
    groups = ["--clear-groups"]
    if accel == "kvm":
        try:
            groups = [f"--groups={grp.getgrnam('kvm').gr_gid}"]
        except KeyError:
            groups = ["--clear-groups"]
    return (SETPRIV, f"--reuid={VMM.uid}", f"--regid={VMM.gid}", *groups, "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--pdeathsig", "KILL", "--")  # fmt: skip
