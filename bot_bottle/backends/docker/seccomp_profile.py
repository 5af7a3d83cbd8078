"""The agent container's seccomp profile: the namespace bottle's rules, in Docker's
JSON, so both backends refuse the same things (see `namespace/seccomp.py` and
`backends/file_modes.py`).

Docker's own default profile cannot be extended, only replaced, and it does not look
at modes: an agent that owns files in a bind-mounted workspace could leave a setuid
copy of a shell there. This profile allows by default and refuses what the namespace
filter refuses: tracing, modules, keyrings, bpf, mounts, new user namespaces
(`clone`/`unshare` with CLONE_NEWUSER; `clone3` answers ENOSYS), TIOCSTI/TIOCLINUX,
setuid/setgid modes, io_uring and `openat2`. Only the native architectures are listed:
a 32-bit or x32 system call is refused by the engine's bad-architecture action.
"""

from __future__ import annotations

import errno
import json
from typing import Any

from bot_bottle.backends import file_modes
from bot_bottle.backends.namespace import seccomp

ARCHITECTURES = ("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64")


def _rule(names: list[str], err: int = errno.EPERM, **cond: int) -> dict[str, Any]:
    """Refuse `names` with `err` when every (arg index -> bits) in `cond` is all set."""
    rule: dict[str, Any] = {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": err}
    if cond:
        rule["args"] = [
            {"index": int(i.removeprefix("a")), "value": bits, "valueTwo": bits,
             "op": "SCMP_CMP_MASKED_EQ"}
            for i, bits in cond.items()
        ]  # fmt: skip
    return rule


def profile() -> dict[str, Any]:
    rules = [
        _rule(list(seccomp.DENIED)),
        _rule(["clone", "unshare"], a0=seccomp.CLONE_NEWUSER),
        _rule(["clone3"], errno.ENOSYS),
        _rule(list(file_modes.DENIED)),
        _rule(list(file_modes.UNAVAILABLE), errno.ENOSYS),
    ]
    # ioctl: the request must equal, not merely contain, TIOCSTI/TIOCLINUX.
    for req in (seccomp.TIOCSTI, seccomp.TIOCLINUX):
        rules.append({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
                      "args": [{"index": 1, "value": req, "op": "SCMP_CMP_EQ"}]})  # fmt: skip
    for r in file_modes.MODE_RULES:
        for bit in (0o4000, 0o2000):  # S_ISUID, S_ISGID: one rule each (conditions AND)
            mode = {f"a{r.mode_arg}": bit}
            if r.flags_arg is None:
                rules.append(_rule([r.syscall], **mode))
            else:
                for flag in (file_modes.O_CREAT, file_modes.O_TMPFILE_BIT):
                    rules.append(_rule([r.syscall], **mode, **{f"a{r.flags_arg}": flag}))
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": list(ARCHITECTURES),
            "syscalls": rules}  # fmt: skip


def security_opt() -> str:
    return "seccomp=" + json.dumps(profile(), separators=(",", ":"))
