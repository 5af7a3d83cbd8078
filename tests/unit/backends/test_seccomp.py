"""The seccomp program, run through a BPF interpreter on chosen syscalls."""

from __future__ import annotations

import pytest

from bot_bottle.backends.namespace import seccomp as sc


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_denied_syscalls_get_eperm(arch_name: str) -> None:
    arch = sc.ARCHES[arch_name]
    prog = sc.program(arch_name)
    for name in sc.DENIED:
        nr = arch.numbers.get(name)
        if nr is None:  # only a call the table lacks may go without a number
            assert name in X86_ONLY and arch_name != "x86_64", f"{name}: no {arch_name} number"
            continue
        assert sc.evaluate(prog, arch.audit, nr) == sc.RET_EPERM, name


# Calls only the x86_64 table has (arm64 uses the generic table without them).
X86_ONLY = {"uselib", "ustat", "sysfs", "_sysctl", "iopl", "ioperm", "create_module",
            "get_kernel_syms", "query_module"}  # fmt: skip


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_what_reaches_into_other_processes_is_denied(arch_name: str) -> None:
    # ptrace's reach without ptrace: another process's fds (kcmp, pidfd_getfd), its
    # memory (process_vm_*, process_madvise) and pages (move_pages, migrate_pages).
    arch = sc.ARCHES[arch_name]
    prog = sc.program(arch_name)
    for name in ("ptrace", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                 "process_vm_writev", "move_pages", "migrate_pages"):  # fmt: skip
        assert sc.evaluate(prog, arch.audit, arch.numbers[name]) == sc.RET_EPERM, name
    # pidfd_open (434 on both tables) stays: it reaches only what kill(2) reaches.
    assert sc.evaluate(prog, arch.audit, 434) == sc.RET_ALLOW


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_new_namespaces_denied_other_clones_allowed(arch_name: str) -> None:
    arch = sc.ARCHES[arch_name]
    prog = sc.program(arch_name)
    n = arch.numbers
    assert sc.evaluate(prog, arch.audit, n["clone"], [sc.CLONE_NEWUSER | 0x11]) == sc.RET_EPERM
    assert sc.evaluate(prog, arch.audit, n["unshare"], [sc.CLONE_NEWUSER]) == sc.RET_EPERM
    # Every other namespace too (mnt, cgroup, uts, ipc, pid, net; time for unshare).
    for flag in (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x20000000, 0x40000000):
        assert sc.evaluate(prog, arch.audit, n["clone"], [flag | 0x11]) == sc.RET_EPERM
        assert sc.evaluate(prog, arch.audit, n["unshare"], [flag]) == sc.RET_EPERM
    assert sc.evaluate(prog, arch.audit, n["unshare"], [sc.CLONE_NEWTIME]) == sc.RET_EPERM
    assert sc.evaluate(prog, arch.audit, n["unshare"], [0x600]) == sc.RET_ALLOW  # FS|FILES
    assert sc.evaluate(prog, arch.audit, n["clone"], [0x003D0F00]) == sc.RET_ALLOW
    assert sc.evaluate(prog, arch.audit, n["clone3"]) == sc.RET_ENOSYS


def test_terminal_injection_denied() -> None:
    a = sc.ARCHES["x86_64"]
    prog = sc.program("x86_64")
    assert sc.evaluate(prog, a.audit, 16, [1, sc.TIOCSTI]) == sc.RET_EPERM
    assert sc.evaluate(prog, a.audit, 16, [1, 0x5413]) == sc.RET_ALLOW  # TIOCGWINSZ


def test_other_arch_and_x32_killed() -> None:
    prog = sc.program("x86_64")
    assert sc.evaluate(prog, 0x40000003, 0) == sc.RET_KILL_PROCESS  # i386
    assert sc.evaluate(prog, sc.ARCHES["x86_64"].audit, 0x40000000 | 1) == sc.RET_KILL_PROCESS
    assert sc.evaluate(prog, sc.ARCHES["x86_64"].audit, 0) == sc.RET_ALLOW


def test_bytes_are_eight_per_instruction() -> None:
    assert len(sc.compile_bpf("x86_64")) == 8 * len(sc.program("x86_64"))


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_only_unix_and_ip_socket_families(arch_name: str) -> None:
    import socket

    arch = sc.ARCHES[arch_name]
    prog = sc.program(arch_name)
    for call in ("socket", "socketpair"):
        nr = arch.numbers[call]
        for family in range(0, 64):
            if family == socket.AF_NETLINK:
                continue
            want = sc.RET_ALLOW if family in sc.SOCKET_FAMILIES else sc.RET_EAFNOSUPPORT
            assert sc.evaluate(prog, arch.audit, nr, [family, 1, 0]) == want, (call, family)
        # Netlink: route only (getifaddrs); audit, uevents, generic, sock_diag refused.
        assert sc.evaluate(prog, arch.audit, nr, [socket.AF_NETLINK, 3, 0]) == sc.RET_ALLOW
        for protocol in (4, 9, 15, 16):
            assert sc.evaluate(prog, arch.audit, nr, [socket.AF_NETLINK, 3, protocol]) == (
                sc.RET_EPROTONOSUPPORT
            )
        assert sc.evaluate(prog, arch.audit, nr, [socket.AF_VSOCK, 1]) == sc.RET_EAFNOSUPPORT
        # Only the low word is the family (an int); a high word cannot smuggle one in.
        assert sc.evaluate(prog, arch.audit, nr, [(1 << 32) | socket.AF_VSOCK]) != sc.RET_ALLOW
    assert set(sc.SOCKET_FAMILIES) == {socket.AF_UNIX, socket.AF_INET, socket.AF_INET6}


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_io_uring_is_off(arch_name: str) -> None:
    # IORING_OP_SOCKET creates sockets without socket(2), out of this filter's sight.
    arch = sc.ARCHES[arch_name]
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert sc.evaluate(sc.program(arch_name), arch.audit, arch.numbers[name]) == sc.RET_EPERM


@pytest.mark.parametrize("arch_name", sorted(sc.ARCHES))
def test_personality_only_plain_values(arch_name: str) -> None:
    arch = sc.ARCHES[arch_name]
    prog = sc.program(arch_name)
    nr = arch.numbers["personality"]
    for persona in sc.PERSONALITIES:
        assert sc.evaluate(prog, arch.audit, nr, [persona]) == sc.RET_ALLOW, hex(persona)
    for persona in (0x0040000, 0x0400000, 0x0200000, 0x1000000):  # no ASLR, READ_IMPLIES_EXEC...
        assert sc.evaluate(prog, arch.audit, nr, [persona]) == sc.RET_EPERM, hex(persona)
