"""The VM's QEMU command line, as data: no network device, QEMU confined, the command
carried intact through a kernel command line that has no quoting."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.qemu import VmConfig, argv, encode_command, host_tsc_khz

CFG = VmConfig("tcg", Path("/k/vmlinuz"), Path("/k/initrd"), root=Path("/k/root.erofs"),
               command=("python3", "-c", "print('a b'); x = \"y\""), tsc_khz=2600000)  # fmt: skip


def _flag(a: tuple[str, ...], name: str) -> list[str]:
    return [a[i + 1] for i, v in enumerate(a[:-1]) if v == name]


def test_no_network_device_and_no_defaults() -> None:
    a = argv(CFG)
    assert not {"-net", "-nic", "-netdev"} & set(a)
    assert not any("net" in d for d in _flag(a, "-device"))
    assert {"-nodefaults", "-no-user-config", "-no-reboot"} <= set(a)
    assert _flag(a, "-M") == ["microvm"]


def test_qemu_is_sandboxed_and_the_root_read_only() -> None:
    a = argv(CFG)
    assert _flag(a, "-sandbox") == [
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
    ]
    (drive,) = _flag(a, "-drive")
    assert "readonly=on" in drive and "format=raw" in drive


def test_accel_picks_the_cpu_model() -> None:
    assert _flag(argv(CFG), "-cpu") == ["max"]
    kvm = VmConfig("kvm", CFG.kernel, CFG.initramfs)
    assert _flag(argv(kvm), "-cpu") == ["host"] and _flag(argv(kvm), "-accel") == ["kvm"]


def test_command_survives_the_kernel_command_line() -> None:
    (append,) = _flag(argv(CFG), "-append")
    assert "tsc_early_khz=2600000" in append.split()
    (run,) = [p for p in append.split() if p.startswith("bb.run=")]
    line = base64.b64decode(run.removeprefix("bb.run=")).decode()
    assert shlex.split(line) == ["exec", *CFG.command]
    assert " " not in run


def test_probe_mode_has_no_root_and_no_command() -> None:
    probe = VmConfig("tcg", CFG.kernel, CFG.initramfs)
    a = argv(probe)
    assert "-drive" not in a
    assert "bb.mode=probe" in _flag(a, "-append")[0].split()
    assert base64.b64decode(encode_command(())).decode() == "true\n"


def test_host_tsc_khz_from_cpuinfo() -> None:
    assert host_tsc_khz("processor\t: 0\ncpu MHz\t\t: 2600.000\n") == 2600000
    assert host_tsc_khz("processor\t: 0\n") is None
    assert host_tsc_khz("cpu MHz : fast\n") is None


def test_guest_exit_is_the_last_status_line() -> None:
    console = "noise\nbot-bottle-guest: exit 3\nbot-bottle-guest: exit 7\r\n[ 2.0] reboot\n"
    assert boot.guest_exit(console.replace("\r", "")) == 7
    assert boot.guest_exit("no status here\n") is None


def test_host_channel_is_a_named_serial_port_on_a_client_socket() -> None:
    a = argv(VmConfig("tcg", CFG.kernel, CFG.initramfs, channel=Path("/run/x/ch.sock")))
    assert _flag(a, "-chardev") == ["socket,id=channel0,path=/run/x/ch.sock,server=off"]
    assert "virtserialport,chardev=channel0,name=org.bot-bottle.channel.0" in _flag(a, "-device")
    assert "-chardev" not in argv(CFG)  # no channel asked, none added


def test_user_and_forwarder_ports_reach_the_guest_init() -> None:
    cfg = VmConfig("tcg", CFG.kernel, CFG.initramfs, root=CFG.root, mux_ports=(3128, 9419),
                   user=1000)  # fmt: skip
    parts = _flag(argv(cfg), "-append")[0].split()
    assert "bb.user=1000" in parts and "bb.mux=3128,9419" in parts
    assert not any(
        p.startswith(("bb.user", "bb.mux")) for p in _flag(argv(CFG), "-append")[0].split()
    )


def test_boot_reads_the_marker_and_the_exit_status_from_the_console() -> None:
    from fakes.executor import RecordingExecutor

    console = b"[ 0.2] PCI: noise\r\nbot-bottle-guest: booted 6.1\r\nbot-bottle-guest: exit 5\r\n"
    ex = RecordingExecutor(spawned={"qemu-system-x86_64": console})
    b = boot.run(CFG, ex, timeout=5)
    assert b.marker_s is not None and not b.timed_out
    assert b.guest_exit == 5 and "\r" not in b.output
    (cmd,) = ex.calls
    assert cmd.env is not None and set(cmd.env) == {"PATH", "LANG"}  # nothing of the caller's


def test_provision_disk_is_read_only_and_found_by_serial() -> None:
    a = argv(VmConfig("tcg", CFG.kernel, CFG.initramfs, root=CFG.root, provision=Path("/p.tar")))
    assert "id=provision,file=/p.tar,format=raw,if=none,readonly=on" in _flag(a, "-drive")
    assert "virtio-blk-device,drive=provision,serial=bb-provision" in _flag(a, "-device")


def test_qemu_runs_as_its_own_user_without_privileges() -> None:
    from bot_bottle.backends.microvm.qemu import VMM, vmm_prefix

    prefix = vmm_prefix("tcg")
    assert f"--reuid={VMM.uid}" in prefix and f"--regid={VMM.gid}" in prefix
    assert {"--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"} <= set(
        prefix
    )
    # The parent-death signal comes after the uid change in setpriv, which would clear it.
    assert prefix[-3:] == ("--pdeathsig", "KILL", "--")
    assert VMM.uid not in (0, 60100)  # neither root nor the agents' dedicated uid
