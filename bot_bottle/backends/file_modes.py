"""Which system calls could leave a setuid/setgid file, as data both backends compile.

A file's owner may set these bits on it without any capability, so an agent that
owns files in a mounted workspace could leave, say, a setuid copy of a shell there,
usable by any host user who can reach the directory (nosuid only helps inside the
bottle). The seccomp filters of both backends therefore refuse (EPERM):
- `chmod`/`fchmod`/`fchmodat`/`fchmodat2` with S_ISUID or S_ISGID in the mode;
- creating a file or directory (`open`/`openat` with O_CREAT or O_TMPFILE, `creat`,
  `mknod`/`mknodat`, `mkdir`/`mkdirat`) with those bits in the mode;
- io_uring, whose operations carry modes in memory a filter cannot read;
and answer ENOSYS to `openat2`, whose mode sits in a struct (libc falls back to
`openat`). Device nodes need CAP_MKNOD, which no bottle has.
"""

from __future__ import annotations

from dataclasses import dataclass

SETID_BITS = 0o6000  # S_ISUID | S_ISGID
O_CREAT = 0o100
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE; O_TMPFILE adds O_DIRECTORY


@dataclass(frozen=True)
class ModeRule:
    """`syscall` is refused when its argument `mode_arg` has a setid bit, and, when
    `flags_arg` is set, only if those flags create a file (the mode is unused else)."""

    syscall: str
    mode_arg: int
    flags_arg: int | None = None


MODE_RULES = (
    ModeRule("open", 2, 1), ModeRule("openat", 3, 2), ModeRule("creat", 1),
    ModeRule("chmod", 1), ModeRule("fchmod", 1), ModeRule("fchmodat", 2),
    ModeRule("fchmodat2", 2), ModeRule("mknod", 1), ModeRule("mknodat", 2),
    ModeRule("mkdir", 1), ModeRule("mkdirat", 2),
)  # fmt: skip
DENIED = ("io_uring_setup", "io_uring_enter", "io_uring_register")
UNAVAILABLE = ("openat2",)  # ENOSYS
