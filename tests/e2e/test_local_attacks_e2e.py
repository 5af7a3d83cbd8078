"""Local attacks from inside a real bottle, on every backend, by an agent that read the
launcher's code: what it can do to the processes that share its bottle (the in-bottle
forwarder, which on Docker runs as the launcher's uid) and to the kernel surface the
seccomp filters leave.

The agent tries to: signal, read or write the forwarder (its environment, its memory
through /proc, not the ptrace syscall); take the forwarder's port on another address;
make a socket of a refused family through the x32 syscall table; use an fd the
launcher, bwrap or setpriv left open (a state directory, a seccomp file); give a file in the
workspace a file capability (security.capability) or hard-link a root-owned file into
it. Each must fail, and the forwarder must still serve a request afterwards (a bottle
that lost its network would pass the other checks by accident).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e_support import base_env, bb, hand_over, trust

pytestmark = pytest.mark.e2e

ATTACK = r"""
import json, os, socket, subprocess, sys, urllib.request
r = {}
def attempt(name, fn):
    try:
        r[name] = "OK " + str(fn())[:200]
    except Exception as e:
        r[name] = "FAIL " + type(e).__name__ + " " + str(e)[:80]
me = os.getpid()
def others():
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != me:
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read()
                st = os.stat(f"/proc/{p}")
            except OSError:
                continue
            if st.st_uid != os.getuid():
                out[int(p)] = (st.st_uid, cmd.replace(b"\0", b" ")[:80].decode(errors="replace"))
    return out
procs = others()
r["other_uid_processes"] = {str(k): v for k, v in procs.items()}
fwd = [p for p, (_, c) in procs.items() if "forwarder" in c]
for p in fwd:
    attempt(f"environ_{p}", lambda: len(open(f"/proc/{p}/environ", "rb").read()))
    attempt(f"mem_{p}", lambda: open(f"/proc/{p}/mem", "r+b").close() or "opened")
    attempt(f"fd_{p}", lambda: os.listdir(f"/proc/{p}/fd"))
    attempt(f"signal_{p}", lambda: os.kill(p, 0) or "signalled")
def inherited_fds():
    # Every open fd of every process the agent can see: one left open by the launcher,
    # bwrap or setpriv (a state or host directory, a seccomp file) would be a way out.
    odd = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            ok = t.startswith(("pipe:", "socket:", "anon_inode:", "/dev/", "/workspace",
                               "/proc/", "/home/agent", "/tmp", "/run/bot-bottle"))
            if not ok and not t.startswith("/usr/"):
                odd[f"{p}/{fd}"] = t
    if not odd: raise LookupError("none")
    return odd
attempt("inherited_fds", inherited_fds)
def squat(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 3128)); s.listen(1); s.close(); return "bound"
attempt("squat_v4", lambda: squat("127.0.0.1"))
attempt("squat_any", lambda: squat("0.0.0.0"))
def x32_socket():
    # socket(AF_PACKET, SOCK_RAW, 0) through the x32 table; in a child, since a filter
    # may kill the caller outright.
    code = ("import ctypes,sys; l=ctypes.CDLL(None, use_errno=True); "
            "fd=l.syscall(0x40000000|41, 17, 3, 0); sys.exit(0 if fd >= 0 else 3)")
    p = subprocess.run([sys.executable, "-c", code])
    if p.returncode != 0: raise OSError(f"exit {p.returncode}")
    return "made"
attempt("x32_packet_socket", x32_socket)
def filecap():
    open("/workspace/capped", "w").write("x")
    # struct vfs_cap_data, revision 2 with the effective flag: permitted CAP_SETUID and
    # CAP_NET_RAW (low word), nothing inheritable, empty high words: 20 bytes.
    blob = (0x02000001).to_bytes(4, "little") + (1 << 7 | 1 << 13).to_bytes(4, "little")
    blob += bytes(12)
    os.setxattr("/workspace/capped", "security.capability", blob)
    return "set"
attempt("file_capability", filecap)
attempt("hardlink_root_file", lambda: os.link("/usr/bin/env", "/workspace/env-link") or "linked")
attempt("hardlink_etc", lambda: os.link("/etc/passwd", "/workspace/passwd-link") or "linked")
def through_egress():
    try:
        urllib.request.urlopen("http://example.com/", timeout=10)
    except urllib.error.HTTPError as e:
        return f"{e.code}"
    return "no error"
attempt("through_egress", through_egress)
print(json.dumps(r))
"""


def test_local_attacks_from_a_bottle(tmp_path: Path, any_backend: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "attack.py").write_text(ATTACK)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/attack.py > /workspace/attack.json"]
    egress:
      routes:
        - host: api.github.com
    workspace: {{mode: mount, path: ws}}
    backend: {any_backend}
agents:
  a: {{bottle: b}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((ws / "attack.json").read_text())
    print(json.dumps(res, indent=1))
    assert res.pop("through_egress") == "OK 403", res
    if any_backend == "docker" and os.geteuid() == 0:
        # The forwarder (root, no capabilities) was found, so its attempts above ran.
        assert any("forwarder" in c for _, c in res["other_uid_processes"].values()), res
    got = {k: v for k, v in res.items() if k != "other_uid_processes" and v.startswith("OK")}
    assert got == {}, res
    for p in ws.rglob("*"):
        with pytest.raises(OSError):
            os.getxattr(p, "security.capability", follow_symlinks=False)
