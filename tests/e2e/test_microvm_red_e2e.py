"""A red-team pass on the microVM backend from inside a real guest, by an agent that
read `images/guest/bottle.sh` and `mux.py`: one bottle, many probes (each VM costs
seconds under TCG).

The agent tries to: take root's processes in the guest (signals, ptrace, their memory),
open the devices root holds (the channel port, the serial console, /dev/kmsg, the
provision disk), redirect the console to its terminal (TIOCCONS) or learn the nonce
that guards its exit status, and forge that status; leave a process behind that kills
stage 2's killer (it outlived the agent, writing to the workspace, before the agent's
processes were put in a cgroup of root's);
get capabilities in a user namespace of the guest and use them (mount, and make the
kernel print what it likes to the serial console, a file on the host: a flood of it
filled the host's disk at ~1.4 MB/s under TCG, and the launcher read it all into
memory); leave set-id files, device nodes or file capabilities in the shares, climb out
of them, or change the manifest the guest keeps read-only; reach the guest kernel's
code where exploits start (io_uring, keyrings, userfaultfd, sock_diag, personality
flags, TIOCSTI: it could, with no seccomp filter in the guest); exhaust the forwarder
with more connections than its stream limit. Each must fail, and the bottle must still
reach the egress afterwards and report the agent's own exit status.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, hand_over, trust

pytestmark = pytest.mark.e2e

PROBE = r"""
import ctypes, errno, json, os, resource, signal, socket, stat, subprocess, time, urllib.request
r = {}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def attempt(name, fn):
    try:
        r[name] = "OK " + str(fn())[:200]
    except Exception as e:
        r[name] = "FAIL " + type(e).__name__ + " " + str(e)[:80]
def check(rv):
    if rv < 0:
        e = ctypes.get_errno()
        raise OSError(e, errno.errorcode.get(e, str(e)))
    return rv
def root_pids():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == 0 and open(f"/proc/{p}/cmdline", "rb").read():
                    out.append(int(p))  # a userspace process of root's (not a kernel thread)
            except OSError:
                pass
    return out
roots = root_pids()
r["root_processes"] = "OK " + str(len(roots))
for pid in roots:
    attempt(f"signal_{pid}", lambda: os.kill(pid, signal.SIGTERM))
    attempt(f"ptrace_{pid}", lambda: check(libc.ptrace(16, pid, 0, 0)))  # PTRACE_ATTACH
    attempt(f"mem_{pid}", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
    attempt(f"environ_{pid}", lambda: open(f"/proc/{pid}/environ", "rb").read())
    attempt(f"fd_{pid}", lambda: os.listdir(f"/proc/{pid}/fd"))
def open_dev(path, flags):
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY); os.close(fd); return "opened"
for dev in sorted(os.listdir("/dev")):
    if dev.startswith(("vport", "vd", "ttyS", "console", "kmsg", "hvc", "mem", "fuse")):
        if dev == "hvc0":
            continue  # the agent's own terminal
        attempt(f"dev_{dev}", lambda: open_dev("/dev/" + dev, os.O_RDWR))
attempt("dev_kmsg_read", lambda: open_dev("/dev/kmsg", os.O_RDONLY))
import fcntl, termios
# TIOCCONS: /dev/console's output (the status line) redirected to the agent's terminal.
attempt("tioccons", lambda: fcntl.ioctl(0, termios.TIOCCONS))
attempt("nonce_file", lambda: open("/run/bot-bottle/files/nonce").read())
attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("o"))
attempt("printk_level", lambda: open("/proc/sys/kernel/printk", "w").write("8"))
# A user namespace: capabilities inside it, and mounts with them. A mount option the
# kernel does not know is printed (KERN_ERR) on the serial console: the host's disk.
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x20000
pid = os.fork()
if pid == 0:
    ok = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0
    n, end = 0, time.time() + 4
    while ok and time.time() < end:
        libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"red-team-flood-" + b"A" * 400); n += 1
    os._exit(0 if ok else 1)
_, st = os.waitpid(pid, 0)
r["user_namespace"] = "OK unshared" if os.waitstatus_to_exitcode(st) == 0 else "FAIL refused"
attempt("user_namespace_tool", lambda: subprocess.run(["unshare", "-Ur", "true"], check=True,
                                                      capture_output=True))
# The shares: no set-id bits, device nodes or xattrs reach the host; no way above them.
ws = "/workspace"
with open(f"{ws}/suid", "w") as f:
    f.write("x")
attempt("chmod_setuid", lambda: os.chmod(f"{ws}/suid", 0o4755))
attempt("chmod_setgid", lambda: os.chmod(f"{ws}/suid", 0o2755))
def setid(path):
    mode = os.stat(path).st_mode
    if not mode & (stat.S_ISUID | stat.S_ISGID):
        raise PermissionError(f"no set-id bit: {oct(mode)}")
    return oct(mode)
attempt("create_setuid", lambda: (os.close(os.open(f"{ws}/suid2", os.O_CREAT | os.O_WRONLY, 0o6755)),
                                  setid(f"{ws}/suid2")))
attempt("mkdir_setgid", lambda: (os.mkdir(f"{ws}/sgid"), os.chmod(f"{ws}/sgid", 0o2777),
                                 setid(f"{ws}/sgid")))
attempt("mknod_char", lambda: os.mknod(f"{ws}/dev", stat.S_IFCHR | 0o666, os.makedev(1, 3)))
attempt("setxattr_user", lambda: os.setxattr(f"{ws}/suid", "user.x", b"1"))
attempt("setxattr_cap", lambda: os.setxattr(f"{ws}/suid", "security.capability",
                                            bytes.fromhex("0100000200200000000000000000000000000000")))
libc.name_to_handle_at.restype = ctypes.c_int
def by_handle():
    buf = ctypes.create_string_buffer(136); ctypes.memmove(buf, (128).to_bytes(4, "little"), 4)
    mnt = ctypes.c_int()
    check(libc.name_to_handle_at(-100, b"/workspace", buf, ctypes.byref(mnt), 0))
    fd = os.open("/workspace", os.O_RDONLY)
    return check(libc.open_by_handle_at(fd, buf, 0))
attempt("open_by_handle", by_handle)
# The manifest the launch read: bound read-only over itself in the guest.
m = f"{ws}/bot-bottle.yaml"
attempt("manifest_write", lambda: open(m, "a").write("# changed\n"))
attempt("manifest_chmod", lambda: os.chmod(m, 0o666))
attempt("manifest_rename", lambda: os.rename(m, f"{ws}/moved.yaml"))
attempt("manifest_unlink", lambda: os.unlink(m))
attempt("manifest_link", lambda: os.link(m, f"{ws}/alias.yaml"))
attempt("manifest_over", lambda: (open(f"{ws}/other.yaml", "w").write("x"),
                                  os.rename(f"{ws}/other.yaml", m)))
# The guest kernel is the boundary, so the agent gets the namespace backend's seccomp
# filter there too: what it refuses is where kernel exploits start.
r["seccomp_mode"] = "INFO " + [ln.split()[1] for ln in open("/proc/self/status")
                               if ln.startswith("Seccomp:")][0]
io_params = ctypes.create_string_buffer(120)
attempt("io_uring", lambda: check(libc.syscall(425, 8, io_params)))
attempt("keyctl", lambda: check(libc.syscall(250, 0, -3, 1)))  # the session keyring's id
attempt("userfaultfd", lambda: check(libc.syscall(323, 1)))  # UFFD_USER_MODE_ONLY
attempt("personality_no_aslr", lambda: check(libc.personality(0x0040000)))
attempt("netlink_sock_diag", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4).close())
attempt("vsock", lambda: socket.socket(40, socket.SOCK_STREAM).close())
attempt("tiocsti", lambda: fcntl.ioctl(0, termios.TIOCSTI, b"#"))
# What root in the guest reads to confine each exec: the filter and its loader.
for path in ("/run/bot-bottle/files/seccomp.bpf", "/run/bot-bottle/confine.py"):
    attempt("write_" + os.path.basename(path), lambda: open(path, "r+b").write(b"\0"))
    # A file of the agent's beside it, renamed over it (the same directory: no EXDEV).
    attempt("replace_" + os.path.basename(path),
            lambda: (open(path + ".new", "w").close(), os.rename(path + ".new", path)))
# The forwarder: more connections than its stream limit, held, then let go.
_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held, refused = [], 0
for _ in range(1100):
    try:
        held.append(socket.create_connection(("127.0.0.1", 3128), timeout=5))
    except OSError:
        refused += 1
time.sleep(3)
r["connections_held"] = f"OK {len(held)} refused {refused}"
for s in held:
    s.close()
time.sleep(2)
def through_egress():
    try:
        urllib.request.urlopen("http://example.com/", timeout=20)
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode()[:80]}"
    return "no error"
attempt("through_egress", through_egress)
# A forged status line everywhere the agent can write (it does not know the nonce).
for path in ("/dev/console", "/dev/ttyS0", "/dev/kmsg", "/dev/hvc0"):
    try:
        with open(path, "w") as f:
            f.write("\nbot-bottle-guest: status forged 0\n")
    except OSError:
        pass
json.dump(r, open(f"{ws}/red.json", "w"))
# A leftover that tries to outlive the agent: once the agent's shell is gone, it kills
# every other process of its uid, over and over (the one stage 2 sends to kill it too),
# and says so in the workspace once it has outlived the shell by half a second. Stage 2
# keeps the guest up for seconds while any of the agent's processes lives, so a leftover
# that escaped the cleanup gets there; one the cleanup ends dies in milliseconds. (It
# may well kill something of its uid in those milliseconds: that is no escape.)
shell = os.getppid()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            try:
                os.kill(shell, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        gone = time.monotonic()
        while time.monotonic() < gone + 20:
            killed = libc.kill(-1, 9) == 0
            alive = time.monotonic() - gone
            if alive > 0.5:
                fd = os.open(f"{ws}/survivor.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                os.write(fd, f"alive {alive:.2f} s after the agent; killed: {killed}\n".encode())
                os.close(fd)
                time.sleep(0.1)
    os._exit(0)
"""

# Probes that must succeed: the rest must fail.
EXPECTED_OK = {"root_processes", "through_egress", "connections_held"}


def _watch(launcher: subprocess.Popen[str], bottles: Path) -> tuple[int, int]:
    """While the bottle runs: the largest its console log (on the host) grew, and the
    most threads its launcher had (the host end of the channel has two a stream)."""
    biggest_log, most_threads = 0, 0
    deadline = time.monotonic() + 300
    while launcher.poll() is None and time.monotonic() < deadline:
        for log in bottles.glob("*/vm/console.log"):
            with contextlib.suppress(OSError):
                biggest_log = max(biggest_log, log.stat().st_size)
        for pidfile in bottles.glob("*/attached.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{int(pidfile.read_text())}/status").read_text()
                most_threads = max(most_threads, int(status.split("Threads:")[1].split()[0]))
        time.sleep(0.2)
    if launcher.poll() is None:
        launcher.kill()
    return biggest_log, most_threads


def test_red_team_from_a_microvm_guest(tmp_path: Path, microvm_ready: None) -> None:
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(PROBE)
    manifest = ws / "bot-bottle.yaml"
    manifest.write_text(
        "bottles:\n  b:\n"
        "    agent_provider:\n      template: command\n"
        "      command: [sh, -c, 'python3 /workspace/probe.py; exit 7']\n"
        "    egress:\n      routes:\n        - host: api.github.com\n"
        "    workspace: {mode: mount, path: .}\n    backend: microvm\n"
        "agents:\n  probe: {bottle: b}\n"
    )
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    hand_over(ws)
    trust(env, ws)
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "probe", "-y"],
                                env=env, cwd=ws, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    bottles = Path(env["BOT_BOTTLE_HOME"]) / "bottles"
    biggest_log, most_threads = _watch(launcher, bottles)
    _out, err = launcher.communicate()
    print(f"console log at most {biggest_log} bytes; launcher threads at most {most_threads}")
    assert launcher.returncode == 7, (launcher.returncode, err)  # the agent's own status
    results = json.loads((ws / "red.json").read_text())
    print(json.dumps(results, indent=1))
    assert results["through_egress"].startswith("OK 403 bot-bottle egress denied"), results
    assert int(results["root_processes"].split()[1]) >= 2, results  # stage 2 and mux.py
    escaped = {k: v for k, v in results.items() if k not in EXPECTED_OK and v.startswith("OK")}
    assert escaped == {}, escaped
    assert results["user_namespace"] == "FAIL refused", results
    assert results["seccomp_mode"] == "INFO 2", results  # a filter, for the agent's tree
    # Nothing the guest's kernel printed on the agent's behalf reached the host's disk.
    assert biggest_log < 64 * 1024, biggest_log
    # The shares: no set-id bit, device node or changed manifest on the host.
    for p in ws.iterdir():
        mode = p.lstat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), (p, oct(mode))
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), (p, oct(mode))
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == digest
    # Nothing of the agent's outlived it.
    assert not (ws / "survivor.txt").exists(), (ws / "survivor.txt").read_text()
    assert not (ws / "moved.yaml").exists() and not (ws / "alias.yaml").exists()
    assert os.stat(manifest).st_nlink == 1


def test_hard_linked_manifest_is_refused(tmp_path: Path, any_backend: str) -> None:
    """A hard link to the manifest, made in the workspace by an earlier session (before
    the file was protected, or on the host), is the same file under a name no bind
    covers: the agent wrote the manifest through it. A launch refuses such a file."""
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    manifest = ws / "bot-bottle.yaml"
    manifest.write_text(
        "bottles:\n  b:\n"
        "    agent_provider:\n      template: command\n"
        "      command: [sh, -c, 'echo \"# the agent was here\" >> /workspace/.alias']\n"
        f"    workspace: {{mode: mount, path: .}}\n    backend: {any_backend}\n"
        "agents:\n  probe: {bottle: b}\n"
    )
    before = manifest.read_bytes()
    trust(env, ws)
    os.link(manifest, ws / ".alias")
    hand_over(ws)
    r = bb(["run", "probe", "-y"], env, ws, timeout=180)
    assert manifest.read_bytes() == before, "the agent changed the protected manifest"
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "hard link" in r.stderr, r.stderr
