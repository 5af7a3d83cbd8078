"""The Docker bottle's seccomp profile, passed as `security_opt=["seccomp=<json>"]`.

Docker's built-in profile lets a cap-less container create AF_VSOCK (on 20.10),
netlink and other sockets, and set up io_uring, whose IORING_OP_SOCKET makes sockets
no filter on socket(2) can see. This profile keeps the same shape (deny by default,
an allow list of ordinary syscalls) with bot-bottle's policy, the namespace filter's:

- sockets only in `SOCKET_FAMILIES` (Unix, IPv4, IPv6) and route netlink, else
  EAFNOSUPPORT (EPROTONOSUPPORT for another netlink protocol);
- no io_uring, no new namespaces (unshare, setns, namespace flags on clone; clone3
  gets ENOSYS so libc falls back to clone, whose flags a filter can read);
- nothing from the namespace filter's deny list, nor what needs a capability the
  container does not have;
- only the native syscall table: no x86 (`int 0x80`, socketcall) or x32 ABI, which
  would reach socket(2) under numbers and argument layouts the rules do not cover;
- no setuid/setgid modes (`backends/file_modes.py`): the mode-taking calls are allowed
  only when the mode has neither bit (or, for `open`/`openat`, when nothing is
  created); `openat2`, whose mode sits in a struct, answers ENOSYS;
- no TIOCSTI/TIOCLINUX ioctl (typing into the controlling terminal).

Syscalls newer than this list get EPERM (runc: ENOSYS), as in any allow-list profile.
"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any

from bot_bottle.backends import file_modes
from bot_bottle.backends.namespace.seccomp import (
    CLONE_NAMESPACE_FLAGS,
    DENIED,
    NETLINK_PROTOCOLS,
    PERSONALITIES,
    SOCKET_FAMILIES,
    TIOCLINUX,
    TIOCSTI,
)

# Never allowed, in addition to the namespace filter's `DENIED`: they either need a
# capability the bottle lacks or serve no coding agent (mempolicy, kcmp, obsolete calls).
REFUSED = (
    "chroot", "vhangup", "iopl", "ioperm", "lookup_dcookie", "fanotify_init", "kcmp",
    "pidfd_getfd", "process_madvise", "mbind", "set_mempolicy", "get_mempolicy",
    "migrate_pages", "move_pages", "set_mempolicy_home_node", "nfsservctl", "uselib",
    "ustat", "sysfs", "_sysctl", "create_module", "get_kernel_syms", "query_module",
    "setdomainname", "sethostname", "quotactl_fd", "tuxcall", "security", "afs_syscall",
    "putpmsg", "getpmsg", "vserver", "unshare", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
)  # fmt: skip
# The x86_64 and arm64 tables (kernel 6.1 headers) minus the above and the calls with
# argument rules below; a name one architecture lacks is skipped by the runtime.
ALLOWED = (
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset",
    "chdir", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "close",
    "close_range", "connect", "copy_file_range", "dup", "dup2", "dup3",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate",
    "fanotify_mark", "fchdir", "fchown", "fchownat", "fcntl",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_waitv", "futimesat",
    "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64",
    "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid",
    "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid",
    "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
    "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_setup", "io_submit", "ioprio_get", "ioprio_set", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr",
    "lseek", "lsetxattr", "lstat", "madvise", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mlock", "mlock2", "mlockall", "mmap",
    "modify_ldt", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
    "munlock", "munlockall", "munmap", "nanosleep", "newfstatat",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
    "sendfile", "sendmmsg", "sendmsg", "sendto", "set_robust_list", "set_thread_area",
    "set_tid_address", "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer",
    "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid", "setrlimit",
    "setsid", "setsockopt", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "splice", "stat", "statfs", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
    "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
    "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimes", "vfork", "wait4", "waitid", "write", "writev",
)  # fmt: skip
_ARCHES = [
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []},
]


def _rule(names: list[str], action: str, *args: dict[str, Any], errno_ret: int = 0
          ) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"names": names, "action": action}
    if args:
        out["args"] = list(args)
    if errno_ret:
        out["errnoRet"] = errno_ret
    return out


def _arg(index: int, op: str, value: int, value_two: int = 0) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _arg0(op: str, value: int, value_two: int = 0) -> dict[str, Any]:
    return _arg(0, op, value, value_two)


def _socket_rules() -> list[dict[str, Any]]:
    """socket/socketpair by family (arg 0) and, for netlink, protocol (arg 2). Rules
    must not overlap (libseccomp refuses that), so every refused value is spelled out;
    anything a rule misses falls to the default, EPERM."""
    sockets = ["socket", "socketpair"]
    netlink = socket.AF_NETLINK
    rules = [_rule(sockets, "SCMP_ACT_ALLOW", _arg0("SCMP_CMP_EQ", f)) for f in SOCKET_FAMILIES]
    rules += [_rule(sockets, "SCMP_ACT_ALLOW", _arg0("SCMP_CMP_EQ", netlink),
                    _arg(2, "SCMP_CMP_EQ", p)) for p in NETLINK_PROTOCOLS]  # fmt: skip
    if NETLINK_PROTOCOLS != (0,):
        raise ValueError("seccomp: spell out the refused netlink protocols")
    rules.append(_rule(sockets, "SCMP_ACT_ERRNO", _arg0("SCMP_CMP_EQ", netlink),
                       _arg(2, "SCMP_CMP_GT", 0), errno_ret=errno.EPROTONOSUPPORT))  # fmt: skip
    top = max(*SOCKET_FAMILIES, netlink)
    refused = [f for f in range(top) if f not in SOCKET_FAMILIES]
    rules += [_rule(sockets, "SCMP_ACT_ERRNO", _arg0("SCMP_CMP_EQ", f),
                    errno_ret=errno.EAFNOSUPPORT) for f in refused]  # fmt: skip
    rules.append(_rule(sockets, "SCMP_ACT_ERRNO", _arg0("SCMP_CMP_GT", top),
                       errno_ret=errno.EAFNOSUPPORT))  # fmt: skip
    return rules


def _mode_rules() -> list[dict[str, Any]]:
    """The mode-taking calls, allowed only without a setuid/setgid bit in the mode; for
    `open`/`openat` also whenever the flags create nothing (the mode is unused then).
    Rules for one call are alternatives (any may allow); what none allows is EPERM."""
    no_setid = file_modes.SETID_BITS
    creating = file_modes.O_CREAT | file_modes.O_TMPFILE_BIT
    rules = []
    for r in file_modes.MODE_RULES:
        rules.append(_rule([r.syscall], "SCMP_ACT_ALLOW",
                           _arg(r.mode_arg, "SCMP_CMP_MASKED_EQ", no_setid, 0)))  # fmt: skip
        if r.flags_arg is not None:
            rules.append(_rule([r.syscall], "SCMP_ACT_ALLOW",
                               _arg(r.flags_arg, "SCMP_CMP_MASKED_EQ", creating, 0)))  # fmt: skip
    rules += [_rule([n], "SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS) for n in file_modes.UNAVAILABLE]
    return rules


def _ioctl_rules() -> list[dict[str, Any]]:
    """ioctl with any request but TIOCSTI and TIOCLINUX (both push input into the
    terminal). A rule compares an argument once, so the allowed values are ranges."""
    lo, hi = sorted((TIOCSTI, TIOCLINUX))
    rules = [_rule(["ioctl"], "SCMP_ACT_ALLOW", _arg(1, "SCMP_CMP_LT", lo)),
             _rule(["ioctl"], "SCMP_ACT_ALLOW", _arg(1, "SCMP_CMP_GT", hi))]  # fmt: skip
    rules += [_rule(["ioctl"], "SCMP_ACT_ALLOW", _arg(1, "SCMP_CMP_EQ", v))
              for v in range(lo + 1, hi)]  # fmt: skip
    return rules


def profile() -> dict[str, Any]:
    """The profile as Docker's JSON structure."""
    special = {r.syscall for r in file_modes.MODE_RULES} | set(file_modes.UNAVAILABLE)
    overlap = set(ALLOWED) & (set(DENIED) | set(REFUSED) | special | {"ioctl"})
    if overlap:  # a guard against editing one list and not the other
        raise ValueError(f"seccomp: allowed and refused at once: {sorted(overlap)}")
    rules = [_rule(list(ALLOWED), "SCMP_ACT_ALLOW"), *_socket_rules()]
    rules += [*_mode_rules(), *_ioctl_rules()]
    rules.append(_rule(["clone"], "SCMP_ACT_ALLOW",
                       _arg0("SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS, 0)))  # fmt: skip
    rules.append(_rule(["clone3"], "SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS))
    rules += [_rule(["personality"], "SCMP_ACT_ALLOW", _arg0("SCMP_CMP_EQ", p))
              for p in PERSONALITIES]  # fmt: skip
    return {"defaultAction": "SCMP_ACT_ERRNO", "archMap": _ARCHES, "syscalls": rules}


def security_opt() -> str:
    """The `--security-opt` value carrying the profile (the engine takes the JSON itself)."""
    return "seccomp=" + json.dumps(profile(), separators=(",", ":"), sort_keys=True)
