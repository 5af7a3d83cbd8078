"""The namespace bottle's second seccomp filter: no setuid/setgid files (the rules
are `backends.file_modes`). Loaded next to `seccomp.py`'s filter (bwrap
`--add-seccomp-fd`); architecture checks are that filter's job, so a syscall of
another architecture passes here and is killed there."""

from __future__ import annotations

import platform
import struct

from bot_bottle.backends import file_modes as rules
from bot_bottle.backends.namespace import seccomp
from bot_bottle.backends.namespace.seccomp import (
    _ARCH,
    _JEQ_K,
    _JGE_K,
    _JSET_K,
    _LD_W_ABS,
    _NR,
    _RET_K,
    RET_ALLOW,
    RET_ENOSYS,
    RET_EPERM,
    X32_SYSCALL_BIT,
    _arg_lo,
    _Asm,
)

# Generic syscall numbers; aarch64 has only the *at forms.
NUMBERS = {
    "x86_64": {
        "open": 2, "openat": 257, "creat": 85, "chmod": 90, "fchmod": 91, "fchmodat": 268,
        "fchmodat2": 452, "mknod": 133, "mknodat": 259, "mkdir": 83, "mkdirat": 258,
        "openat2": 437, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427,
    },
    "aarch64": {
        "openat": 56, "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "mknodat": 33,
        "mkdirat": 34, "openat2": 437, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427,
    },
}  # fmt: skip


def program(arch_name: str | None = None) -> list[tuple[int, int, int, int]]:
    name = arch_name or platform.machine()
    arch, n = seccomp.ARCHES[name], NUMBERS[name]
    a = _Asm()
    a.op(_LD_W_ABS, _ARCH)
    a.op(_JEQ_K, arch.audit, 0, "allow")
    a.op(_LD_W_ABS, _NR)
    if name == "x86_64":
        a.op(_JGE_K, X32_SYSCALL_BIT, "allow", 0)
    checks: dict[str, tuple[int, int | None]] = {}
    for r in rules.MODE_RULES:
        if r.syscall in n:
            label = f"flags{r.flags_arg}_mode{r.mode_arg}"
            checks[label] = (r.mode_arg, r.flags_arg)
            a.op(_JEQ_K, n[r.syscall], label, 0)
    for s in rules.DENIED:
        a.op(_JEQ_K, n[s], "eperm", 0)
    for s in rules.UNAVAILABLE:
        a.op(_JEQ_K, n[s], "enosys", 0)
    a.op(_RET_K, RET_ALLOW)
    for label, (mode_arg, flags_arg) in checks.items():
        a.label(label)
        if flags_arg is not None:  # the mode only matters when the call creates a file
            a.op(_LD_W_ABS, _arg_lo(flags_arg))
            a.op(_JSET_K, rules.O_CREAT | rules.O_TMPFILE_BIT, 0, "allow")
        a.op(_LD_W_ABS, _arg_lo(mode_arg))
        a.op(_JSET_K, rules.SETID_BITS, "eperm", "allow")
    a.label("eperm")
    a.op(_RET_K, RET_EPERM)
    a.label("enosys")
    a.op(_RET_K, RET_ENOSYS)
    a.label("allow")  # last: BPF jumps only forward
    a.op(_RET_K, RET_ALLOW)
    return a.assemble()


def compile_bpf(arch_name: str | None = None) -> bytes:
    return b"".join(struct.pack("<HBBI", *ins) for ins in program(arch_name))
