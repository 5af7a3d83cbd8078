"""The kernel surface a bottle's seccomp filter leaves, probed from inside a real bottle
on every backend: an agent that read the filter calls each syscall it lacks directly
(ctypes `syscall()`, no libc wrapper to refuse first).

Each probe passes arguments the kernel itself would answer with something other than
EPERM (a bad fd, a missing path, a harmless success), so EPERM can only come from the
filter: a call that reaches the kernel shows up as its own answer. The calls are the
ones that act on another process (fds, memory, NUMA placement), widen what the kernel
exposes (fanotify, dcookies, quotas, obsolete calls), or have a history of local
exploits (vmsplice), any new namespace (not only a user namespace), on top of the
filter's original list, checked again here. The
syscall numbers are this file's own table, not the filter's, so a wrong number there is
caught too. The 32-bit `int 0x80` entry, a second syscall table, must be killed.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
from e2e_support import base_env, bb, hand_over, trust

pytestmark = pytest.mark.e2e

# Syscall numbers from the kernel's tables (arch/x86/entry/syscalls/syscall_64.tbl and
# include/uapi/asm-generic/unistd.h for arm64); a name an architecture lacks is absent.
NUMBERS = {
    "x86_64": {
        "kcmp": 312, "pidfd_getfd": 438, "process_madvise": 440, "move_pages": 279,
        "migrate_pages": 256, "mbind": 237, "set_mempolicy": 238, "get_mempolicy": 239,
        "set_mempolicy_home_node": 450, "lookup_dcookie": 212, "quotactl_fd": 443,
        "fanotify_init": 300, "vmsplice": 278, "chroot": 161, "uselib": 134, "ustat": 136,
        "sysfs": 139, "_sysctl": 156, "iopl": 172, "ioperm": 173, "nfsservctl": 180,
        "ptrace": 101, "process_vm_readv": 310, "userfaultfd": 323, "perf_event_open": 298,
        "bpf": 321, "keyctl": 250, "io_uring_setup": 425, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "setns": 308, "unshare": 272, "clone3": 435,
        "pidfd_open": 434, "open_tree_attr": 467,
    },
    "aarch64": {
        "kcmp": 272, "pidfd_getfd": 438, "process_madvise": 440, "move_pages": 239,
        "migrate_pages": 238, "mbind": 235, "set_mempolicy": 237, "get_mempolicy": 236,
        "set_mempolicy_home_node": 450, "lookup_dcookie": 18, "quotactl_fd": 443,
        "fanotify_init": 262, "vmsplice": 75, "chroot": 51, "nfsservctl": 42,
        "ptrace": 117, "process_vm_readv": 270, "userfaultfd": 282, "perf_event_open": 241,
        "bpf": 280, "keyctl": 219, "io_uring_setup": 425, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "setns": 268, "unshare": 97, "clone3": 435,
        "pidfd_open": 434, "open_tree_attr": 467,
    },
}  # fmt: skip

PROBE = r"""
import ctypes, errno, json, os, platform, subprocess, sys
NR = json.loads(NUMBERS_JSON)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    ctypes.set_errno(0)
    rv = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])
    err = ctypes.get_errno()
    if rv == -1:
        return "EPERM" if err == errno.EPERM else "reached kernel: " + errno.errorcode.get(err, str(err))
    return f"reached kernel: returned {rv}"
me = os.getpid()
pidfd = os.pidfd_open(me)
nowhere = ctypes.create_string_buffer(b"/nonexistent")
path = ctypes.addressof(nowhere)
args = {
    # Another process's fds, memory and pages: ptrace's reach without ptrace.
    "kcmp": (me, me, 0, 0, 0),  # KCMP_FILE, fd 0 against itself
    "pidfd_getfd": (pidfd, 0, 0),  # a copy of a process's fd 0 (here, ours)
    "process_madvise": (pidfd, 0, 0, 20, 1),  # bad flags
    "move_pages": (0, 0, 0, 0, 0, 0),
    "migrate_pages": (0, 0, 0, 0),
    "mbind": (0, 0, 0, 0, 0, 0),
    "set_mempolicy": (0, 0, 0),
    "get_mempolicy": (0, 0, 0, 0, 0),
    "set_mempolicy_home_node": (0, 0, 0, 0),
    # More of the kernel than a coding agent needs.
    "lookup_dcookie": (0, 0, 0),
    "quotactl_fd": (-1, 0, 0, 0),
    "fanotify_init": (0x200, 0),  # FAN_REPORT_FID, allowed unprivileged since 5.13
    "vmsplice": (-1, 0, 0, 0),
    "chroot": (path,),
    "uselib": (path,),
    "ustat": (0, 0),
    "sysfs": (99,),
    "_sysctl": (0,),
    "iopl": (0,),
    "ioperm": (0, 0, 0),
    "nfsservctl": (0, 0, 0),
    # The filter's original list, again.
    "ptrace": (3, 999999, 0, 0),  # PTRACE_PEEKUSER on nobody
    "process_vm_readv": (me, 0, 0, 0, 0, 0),
    "userfaultfd": (0,),
    "perf_event_open": (0, 0, -1, -1, 0),
    "bpf": (999, 0, 0),
    "keyctl": (0, -3, 0, 0, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "io_uring_setup": (1, 0),
    "open_by_handle_at": (-1, 0, 0),
    "name_to_handle_at": (-1, path, 0, 0, 0),
    "setns": (-1, 0),
    "unshare": (0x10000000,),  # CLONE_NEWUSER
    "open_tree_attr": (-1, 0, 0, 0, 0),  # open_tree's newer form (6.15)
}
r = {name: call(name, *a) for name, a in args.items() if name in NR}
# Any other new namespace: the kernel wants a capability the agent lacks, but first it
# refuses the invalid bit 0x1 (EINVAL), so EPERM here is the filter's, before all that.
for flag, ns in ((0x20000, "mnt"), (0x2000000, "cgroup"), (0x4000000, "uts"),
                 (0x8000000, "ipc"), (0x20000000, "pid"), (0x40000000, "net"), (0x80, "time")):
    r[f"unshare_{ns}"] = call("unshare", flag | 0x1)
# clone3 answers ENOSYS (libc falls back to clone, whose flags the filter reads);
# pidfd_open stays: Python's and Go's process handling use it.
r["clone3"] = call("clone3", 0, 0)
r["pidfd_open"] = call("pidfd_open", me, 0)
if platform.machine() == "x86_64":
    # i386 getpid through int 0x80, from executable memory: the x86 syscall table.
    code = ("import ctypes, mmap; m = mmap.mmap(-1, 4096, prot=7); "
            "m.write(bytes.fromhex('b814000000cd80c3')); "
            "a = ctypes.addressof(ctypes.c_char.from_buffer(m)); "
            "print(ctypes.CFUNCTYPE(ctypes.c_int)(a)())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    r["int80"] = (f"killed by signal {-p.returncode}" if p.returncode < 0
                  else "returned " + p.stdout.strip() + p.stderr.strip()[-80:])
print(json.dumps(r))
"""


def test_seccomp_denies_what_agents_need_not(tmp_path: Path, bottle_backend: str) -> None:
    machine = platform.machine()
    if machine not in NUMBERS:
        pytest.fail(f"no syscall table for {machine} in this test")
    ws = tmp_path / "ws"
    ws.mkdir()
    numbers = json.dumps(json.dumps(NUMBERS[machine]))
    (ws / "probe.py").write_text(PROBE.replace("NUMBERS_JSON", numbers))
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/probe.py > /workspace/seccomp.json"]
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  a: {{bottle: b}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((ws / "seccomp.json").read_text())
    print(json.dumps(res, indent=1))
    assert res.pop("clone3") == "reached kernel: ENOSYS", res
    assert res.pop("pidfd_open").startswith("reached kernel: returned"), res
    if machine == "x86_64":
        # Killed (the namespace filter), or refused: never run as getpid.
        int80 = res.pop("int80")
        assert int80.startswith("killed by signal") or "Error" in int80, int80
    if bottle_backend == "docker" and res.get("open_tree_attr") == "reached kernel: ENOSYS":
        # runc answers ENOSYS for calls newer than its seccomp library knows (this kernel
        # has the call: the namespace probe reaches it), so never the kernel's code either.
        res.pop("open_tree_attr")
    reached = {k: v for k, v in res.items() if v != "EPERM"}
    assert reached == {}, reached
