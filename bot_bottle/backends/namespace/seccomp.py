"""The namespace bottle's seccomp filter, as classic BPF that bwrap loads (`--seccomp FD`).

Hand-assembled rather than built with libseccomp through ctypes: the filter is a
flat deny list plus four argument checks, about a hundred instructions, and writing
it directly keeps it dependency-free, byte-for-byte reproducible, and testable by
running the program in `evaluate` below. The cost is a syscall-number table per
architecture, which is the part libseccomp would otherwise provide.

Policy: default allow (a coding agent runs arbitrary toolchains), deny with EPERM
what it never needs and what would widen its reach: tracing other processes and what
reaches into them without ptrace (kcmp, pidfd_getfd, process_madvise, process_vm_*,
page migration), kernel modules, keyrings, bpf, mounts, new namespaces, perf,
kexec, fanotify, vmsplice, obsolete calls, terminal input injection (the agent shares
the operator's TTY), and personality flags beyond the plain ones (`PERSONALITIES`).
Docker's default profile refuses all of these to a container without capabilities
(it allows vmsplice); pidfd_open and pidfd_send_signal stay, as there: they reach only
what kill(2) does, and Python's and Go's process handling use them. Sockets exist only
in the families in `SOCKET_FAMILIES` (Unix, IPv4, IPv6) and route netlink; any other
family (vsock to the hypervisor, packet, alg, other netlink protocols, ...) is refused,
and io_uring, which
creates sockets without socket(2) where this filter cannot see the family, is off.
An unknown architecture, and the x32 ABI on x86_64 (a second syscall table that
would sidestep the numbers below), are killed outright.
"""

from __future__ import annotations

import errno
import platform
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
RET_EPERM = _RET_ERRNO | errno.EPERM
RET_ENOSYS = _RET_ERRNO | errno.ENOSYS
RET_EAFNOSUPPORT = _RET_ERRNO | errno.EAFNOSUPPORT
RET_EPROTONOSUPPORT = _RET_ERRNO | errno.EPROTONOSUPPORT

CLONE_NEWUSER = 0x10000000
# Any new namespace, not only a user namespace: the others need a capability the agent
# lacks, and refusing them here keeps it out of the code that creates them at all.
CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
# unshare(2) also takes CLONE_NEWTIME, whose bit clone(2) reads as part of the exit signal.
CLONE_NEWTIME = 0x80
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
X32_SYSCALL_BIT = 0x40000000
# What a coding agent needs: Unix sockets, and IP to reach the sidecars on loopback.
SOCKET_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
# Netlink only for NETLINK_ROUTE (protocol 0, arg 2): getifaddrs() needs it, and Node's
# os.networkInterfaces() throws without it (dev servers call it). It shows only the
# bottle's own loopback, and changing anything there needs CAP_NET_ADMIN, which the
# agent lacks. Other netlink protocols (audit, uevents, generic, sock_diag) stay out.
NETLINK_PROTOCOLS = (0,)
# personality(2) values a program may set: Linux, 32-bit, uname-2.6, and the query. Others
# (ADDR_NO_RANDOMIZE turning off ASLR, READ_IMPLIES_EXEC making data executable) weaken
# what runs next and no coding agent needs them. The kernel reads the argument as an
# unsigned int, so the low word is all there is to check.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# Offsets into struct seccomp_data (little-endian: low word of an arg first).
_NR, _ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "mount", "umount2", "pivot_root", "setns", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at",
    "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # Reach into another process without ptrace: compare its fds, copy one, advise or
    # move its pages; NUMA policy is Docker's CAP_SYS_NICE group.
    "kcmp", "pidfd_getfd", "process_madvise", "move_pages", "migrate_pages", "mbind",
    "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node",
    # Kernel surface no coding agent uses: filesystem-wide fanotify, dcookies, quotas,
    # vmsplice (a history of local exploits), chroot, tty hangup, host and domain names,
    # and obsolete or x86-only calls (absent from some tables: skipped there).
    "fanotify_init", "lookup_dcookie", "quotactl_fd", "vmsplice", "chroot", "vhangup",
    "sethostname", "setdomainname", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
    "iopl", "ioperm", "create_module", "get_kernel_syms", "query_module",
    "open_tree_attr",
)  # fmt: skip


@dataclass(frozen=True)
class Arch:
    audit: int
    numbers: dict[str, int]


ARCHES = {
    "x86_64": Arch(0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "keyctl": 250, "add_key": 248, "request_key": 249,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "mount": 165,
        "umount2": 166, "pivot_root": 155, "setns": 308, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163, "quotactl": 179,
        "syslog": 103, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
        "clock_adjtime": 305, "unshare": 272, "clone": 56, "clone3": 435, "ioctl": 16,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "socket": 41, "socketpair": 53, "personality": 135,
        "kcmp": 312, "pidfd_getfd": 438, "process_madvise": 440, "move_pages": 279,
        "migrate_pages": 256, "mbind": 237, "set_mempolicy": 238, "get_mempolicy": 239,
        "set_mempolicy_home_node": 450, "fanotify_init": 300, "lookup_dcookie": 212,
        "quotactl_fd": 443, "vmsplice": 278, "chroot": 161, "vhangup": 153,
        "sethostname": 170, "setdomainname": 171, "nfsservctl": 180, "uselib": 134,
        "ustat": 136, "sysfs": 139, "_sysctl": 156, "iopl": 172, "ioperm": 173,
        "create_module": 174, "get_kernel_syms": 177, "query_module": 178,
        "open_tree_attr": 467,
    }),
    "aarch64": Arch(0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "kexec_file_load": 294, "keyctl": 219, "add_key": 217, "request_key": 218,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "mount": 40,
        "umount2": 39, "pivot_root": 41, "setns": 268, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89, "quotactl": 60,
        "syslog": 116, "settimeofday": 170, "clock_settime": 112, "adjtimex": 171,
        "clock_adjtime": 266, "unshare": 97, "clone": 220, "clone3": 435, "ioctl": 29,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "socket": 198, "socketpair": 199, "personality": 92,
        "kcmp": 272, "pidfd_getfd": 438, "process_madvise": 440, "move_pages": 239,
        "migrate_pages": 238, "mbind": 235, "set_mempolicy": 237, "get_mempolicy": 236,
        "set_mempolicy_home_node": 450, "fanotify_init": 262, "lookup_dcookie": 18,
        "quotactl_fd": 443, "vmsplice": 75, "chroot": 51, "vhangup": 58,
        "sethostname": 161, "setdomainname": 162, "nfsservctl": 42,
        "open_tree_attr": 467,
    }),
}  # fmt: skip


class _Asm:
    """Tiny assembler: jumps name labels; offsets are resolved on `assemble`."""

    def __init__(self) -> None:
        self.ops: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.ops)

    def op(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.ops.append((code, jt, jf, k))

    def assemble(self) -> list[tuple[int, int, int, int]]:
        out = []
        for i, (code, jt, jf, k) in enumerate(self.ops):

            def rel(t: str | int, i: int = i) -> int:
                off = self.labels[t] - i - 1 if isinstance(t, str) else t
                if not 0 <= off <= 255:
                    raise ValueError("seccomp jump out of range")
                return off

            out.append((code, rel(jt), rel(jf), k))
        return out


def program(arch_name: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter for `arch_name` (default: this machine) as (code, jt, jf, k) tuples."""
    arch = ARCHES[arch_name or platform.machine()]
    n = arch.numbers
    a = _Asm()
    a.op(_LD_W_ABS, _ARCH)
    a.op(_JEQ_K, arch.audit, 0, "kill")
    a.op(_LD_W_ABS, _NR)
    if arch_name == "x86_64" or (arch_name is None and platform.machine() == "x86_64"):
        a.op(_JGE_K, X32_SYSCALL_BIT, "kill", 0)
    for name in DENIED:
        if name in n:  # an architecture without the call has nothing to deny
            a.op(_JEQ_K, n[name], "eperm", 0)
    a.op(_JEQ_K, n["clone"], "check_clone", 0)
    a.op(_JEQ_K, n["unshare"], "check_unshare", 0)
    # clone3 passes flags in a struct that BPF cannot read; ENOSYS makes libc fall
    # back to clone(), whose flags we can check.
    a.op(_JEQ_K, n["clone3"], "enosys", 0)
    a.op(_JEQ_K, n["ioctl"], "check_ioctl", 0)
    a.op(_JEQ_K, n["socket"], "check_family", 0)
    a.op(_JEQ_K, n["socketpair"], "check_family", 0)
    a.op(_JEQ_K, n["personality"], "check_personality", 0)
    a.op(_RET_K, RET_ALLOW)
    a.label("check_personality")  # personality(persona): arg 0
    a.op(_LD_W_ABS, _arg_lo(0))
    for persona in PERSONALITIES:
        a.op(_JEQ_K, persona, "allow", 0)
    a.op(_RET_K, RET_EPERM)
    a.label("check_unshare")  # unshare(flags)
    a.op(_LD_W_ABS, _arg_lo(0))
    a.op(_JSET_K, CLONE_NEWTIME, "eperm", 0)
    a.label("check_clone")  # clone(flags, ...): flags are arg 0 (loaded again, harmless)
    a.op(_LD_W_ABS, _arg_lo(0))
    a.op(_JSET_K, CLONE_NAMESPACE_FLAGS, "eperm", 0)
    a.op(_RET_K, RET_ALLOW)
    a.label("check_ioctl")  # ioctl(fd, request, ...): request is arg 1
    a.op(_LD_W_ABS, _arg_lo(1))
    a.op(_JEQ_K, TIOCSTI, "eperm", 0)
    a.op(_JEQ_K, TIOCLINUX, "eperm", 0)
    a.op(_RET_K, RET_ALLOW)
    a.label("check_family")  # socket(family, type, protocol), socketpair(family, ...)
    a.op(_LD_W_ABS, _arg_lo(0))  # ints: the kernel reads only the low words
    for family in SOCKET_FAMILIES:
        a.op(_JEQ_K, family, "allow", 0)
    a.op(_JEQ_K, socket.AF_NETLINK, "check_netlink", 0)
    a.op(_RET_K, RET_EAFNOSUPPORT)
    a.label("check_netlink")
    a.op(_LD_W_ABS, _arg_lo(2))
    for protocol in NETLINK_PROTOCOLS:
        a.op(_JEQ_K, protocol, "allow", 0)
    a.op(_RET_K, RET_EPROTONOSUPPORT)
    a.label("allow")
    a.op(_RET_K, RET_ALLOW)
    a.label("eperm")
    a.op(_RET_K, RET_EPERM)
    a.label("enosys")
    a.op(_RET_K, RET_ENOSYS)
    a.label("kill")
    a.op(_RET_K, RET_KILL_PROCESS)
    return a.assemble()


def compile_bpf(arch_name: str | None = None) -> bytes:
    """The filter as the bytes of a `struct sock_filter[]`, what bwrap reads."""
    return b"".join(struct.pack("<HBBI", *ins) for ins in program(arch_name))


def evaluate(
    prog: Sequence[tuple[int, int, int, int]], arch: int, nr: int, args: Sequence[int] = ()
) -> int:
    """Run `prog` on one syscall, as the kernel would; for tests."""
    words = {_NR: nr, _ARCH: arch}
    for i, v in enumerate(list(args) + [0] * (6 - len(args))):
        words[_arg_lo(i)] = v & 0xFFFFFFFF
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        if code == _LD_W_ABS:
            acc = words[k]
        elif code == _RET_K:
            return k
        elif code in (_JEQ_K, _JGE_K, _JSET_K):
            hit = {_JEQ_K: acc == k, _JGE_K: acc >= k, _JSET_K: bool(acc & k)}[code]
            pc += jt if hit else jf
        else:
            raise ValueError(f"unknown opcode {code:#x}")
