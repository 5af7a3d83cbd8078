"""What a microVM bottle's guest is given and gives back: the files of its provision
disk (the agent's environment and command, users, protected paths, a nonce) and the
agent's exit status read from the serial console behind that nonce (the guest's side
is `images/guest/bottle.sh`)."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence

from bot_bottle.backends.host_user import HostUser
from bot_bottle.backends.microvm.provision_disk import GuestFile
from bot_bottle.backends.namespace import seccomp
from bot_bottle.backends.spec import BottleSpec, agent_env, workspace_binds

HOME = "/home/agent"
WORKSPACE = "/workspace"
GUEST_ARCH = "x86_64"
STATUS = re.compile(r"^bot-bottle-guest: status (\S+) (\d+)\s*$", re.M)


def guest_files(
    spec: BottleSpec, argv_: Sequence[str], user: HostUser, nonce: str, workspace: bool
) -> list[GuestFile]:
    """What the provision disk carries into the guest (see `images/guest/bottle.sh`)."""
    env = agent_env(spec, HOME, {
        "USER": "agent", "LOGNAME": "agent", "SHELL": "/bin/sh", "LANG": "C.UTF-8",
        "TMPDIR": "/tmp", "TERM": os.environ.get("TERM", "dumb"),
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    })  # fmt: skip
    exports = [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())
               if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)]  # fmt: skip
    lines = ["# the agent's environment and command, written by the launcher", *exports]
    lines.append("exec " + shlex.join(argv_) if argv_ else "exec /bin/sh")
    binds = []
    for b in workspace_binds(spec):
        if "\n" in b.rel:
            raise ValueError(f"a protected path holds a newline: {b.rel!r}")
        binds.append(f"{'ro' if b.read_only else 'rw'} {b.rel}")
    return [
        GuestFile("run.sh", ("\n".join(lines) + "\n").encode()),
        # The same environment for `bot-bottle exec` (images/guest/exec_service.py).
        GuestFile("env.sh", "".join(f"{e}\n" for e in exports).encode()),
        GuestFile("nonce", nonce.encode(), 0o600),
        # The agent's seccomp filter (`images/guest/confine.py` loads it): the guest is
        # x86_64 whatever the host is (`qemu-system-x86_64`).
        GuestFile("seccomp.bpf", seccomp.compile_bpf(GUEST_ARCH)),
        GuestFile("shares", b"home\n" + (b"workspace\n" if workspace else b"")),
        GuestFile("binds", "".join(f"{b}\n" for b in binds).encode()),
        GuestFile("etc/passwd", (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"agent:x:{user.uid}:{user.gid}:bot-bottle agent:{HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n").encode()),
        GuestFile("etc/group", f"root:x:0:\nagent:x:{user.gid}:\nnogroup:x:65534:\n".encode()),
        GuestFile("etc/hosts", (f"127.0.0.1 localhost {spec.slug[:63]}\n"
                                "::1 localhost ip6-localhost\n").encode()),
    ]  # fmt: skip


def exit_status(qemu_rc: int, console: str, nonce: str) -> int:
    """The agent's exit status from the console log (the last status line with this
    boot's nonce); without one, QEMU's own code (128+N when it was signalled), and a
    guest that died unannounced is reported on stderr."""
    found = [int(m.group(2)) for m in STATUS.finditer(console.replace("\r", ""))
             if m.group(1) == nonce]  # fmt: skip
    if found:
        return found[-1]
    if qemu_rc > 128:
        return qemu_rc
    tail = " | ".join(ln.strip() for ln in console.splitlines()[-5:] if ln.strip())
    print(f"bot-bottle: the microVM ended without the agent's exit status "
          f"(QEMU exit {qemu_rc}); its console: {tail or 'nothing'}", file=sys.stderr)  # fmt: skip
    return qemu_rc or 1
