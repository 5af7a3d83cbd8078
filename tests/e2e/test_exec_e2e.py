"""`bot-bottle exec` into a running bottle, on every backend: the command sees the
workspace and runs with exactly the agent's isolation (same namespaces, uid,
capabilities, no-new-privs, seccomp filters, environment), reaches nothing but the
egress proxy, cannot read the host's files, and passes its exit code on; a shell gets
a terminal; a stopped or unknown bottle is refused clearly."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, trust
from netprobe import host_address, host_services

pytestmark = pytest.mark.e2e

# What a process is, as far as isolation goes: compared between the agent and exec.
IDENT = r"""
import json, os
def link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the directory listing's own descriptor, closed by now
        return ""
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
        "NoNewPrivs", "Seccomp", "Seccomp_filters")
env = {k: v for k, v in os.environ.items() if k not in ("PWD", "SHLVL", "_", "OLDPWD", "TERM")}
print(json.dumps({
    "status": {k: status.get(k, "").strip() for k in keys},
    "ns": {n: os.readlink(f"/proc/self/ns/{n}") for n in sorted(os.listdir("/proc/self/ns"))},
    "cwd": os.getcwd(), "env": env, "hostname": os.uname().nodename,
    # Neither holds a socket: the exec listener and the forwarder's stay with it.
    "sockets": [l for l in (link(f) for f in os.listdir("/proc/self/fd"))
                if l.startswith("socket:")],
}))
"""

PROBE = r"""
import ctypes, glob, json, os, socket, urllib.request
r = {}
def attempt(name, fn):
    try:
        r[name] = "OK " + str(fn())[:200]
    except Exception as e:
        r[name] = "FAIL " + type(e).__name__
def connect(host, port):
    s = socket.socket(); s.settimeout(3); s.connect((host, port)); s.close(); return "connected"
def through_egress():
    try:
        urllib.request.urlopen("http://example.com/", timeout=10)
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode()[:80]}"
    return "no error"
libc = ctypes.CDLL(None, use_errno=True)
def syscall_ok(rc):
    if rc != 0: raise PermissionError(os.strerror(ctypes.get_errno()))
    return "done"
attempt("host_ssh_key", lambda: open(os.environ["HOST_KEY"]).read())
attempt("host_state_dir", lambda: os.listdir(os.environ["HOST_STATE"]))
attempt("host_loopback_service", lambda: connect("127.0.0.1", int(os.environ["HOST_PORT"])))
attempt("host_address_service", lambda: connect(os.environ["HOST_IP"], int(os.environ["HOST_PORT"])))
attempt("dns_lookup", lambda: socket.getaddrinfo("example.com", 443))
attempt("unshare_user", lambda: syscall_ok(libc.unshare(0x10000000)))
attempt("mount_tmpfs", lambda: syscall_ok(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
attempt("workspace", lambda: open("/workspace/marker").read())
# A microVM's channel to the host (root's): the agent cannot write frames on it itself.
attempt("vm_channel", lambda: open(sorted(glob.glob("/dev/vport*"))[0], "r+b"))
attempt("through_egress", through_egress)
print(json.dumps(r))
"""


def _manifest(tmp_path: Path, backend: str, port: int) -> dict[str, str]:
    env = base_env(tmp_path)
    ssh = Path(env["HOME"]) / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nhost-key-bytes\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ident.py").write_text(IDENT)
    (ws / "probe.py").write_text(PROBE)
    (ws / "marker").write_text("seen from exec\n")
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/ident.py > /workspace/agent.json; exec sleep 300"]
    egress: {{routes: []}}
    env:
      HOST_KEY: "{ssh / "id_ed25519"}"
      HOST_STATE: "{env["BOT_BOTTLE_HOME"]}"
      HOST_PORT: "{port}"
      HOST_IP: "{host_address()}"
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  a: {{bottle: b}}
"""
    )
    trust(env, tmp_path)
    return env


@contextlib.contextmanager
def _running(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A kept bottle whose agent has written its identity and sleeps; its slug."""
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y", "--keep"],
                                env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240  # a microVM under TCG on a busy host is slow
        ident = tmp_path / "ws" / "agent.json"
        while True:
            running = [b["slug"] for b in bottles(env, tmp_path) if b["status"] == "running"]
            if running and ident.exists() and ident.stat().st_size > 0:
                break
            assert time.monotonic() < deadline and launcher.poll() is None, "bottle never ran"
            time.sleep(0.1)
        yield running[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        for b in bottles(env, tmp_path):
            bb(["rm", b["slug"]], env, tmp_path)


def _exec_in_pty(env: dict[str, str], cwd: Path, slug: str, typed: bytes) -> tuple[int, bytes]:
    """`bot-bottle exec SLUG` with a terminal as its stdin and stdout, `typed` typed in."""
    master, slave = pty.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "bot_bottle", "exec", slug], env=env, cwd=cwd,
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    os.write(master, typed)  # the terminal holds it until the shell reads
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if p.poll() is not None and not ready:
            break
    os.close(master)
    return p.wait(timeout=10), out


# Run by `exec` beside another exec on a terminal: finds that one's shell and tries to
# read its terminal (the operator's keystrokes) and its memory.
SNOOP = r"""
import json, os, time
r = {"found": False}
def attempt(name, fn):
    try:
        fn()
        r[name] = "OK"
    except OSError as e:
        r[name] = "FAIL " + type(e).__name__
end = time.monotonic() + 90
while not r["found"] and time.monotonic() < end:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tty = os.readlink(f"/proc/{pid}/fd/0")
        except OSError:
            continue
        if tty.startswith("/dev/pts/") and int(pid) != os.getpid():
            r["found"] = True
            attempt("terminal_by_proc", lambda: os.close(os.open(f"/proc/{pid}/fd/0", os.O_RDWR)))
            attempt("terminal_by_path", lambda: os.close(os.open(tty, os.O_RDWR)))
            attempt("memory", lambda: open(f"/proc/{pid}/mem", "rb").close())
            break
    time.sleep(0.1)
print(json.dumps(r))
"""


def _exec_resized(env: dict[str, str], cwd: Path, slug: str) -> bytes:
    """A shell in `exec` prints its terminal's size, the caller's is resized (33x101 to
    40x120: TIOCSWINSZ and the SIGWINCH a terminal sends), it prints it again."""
    master, slave = pty.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "bot_bottle", "exec", slug], env=env, cwd=cwd,
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    os.write(master, b"stty size; sleep 4; stty size; exit 0\n")
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"40 120" not in out:
        if select.select([master], [], [], 0.2)[0]:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
            if b"33 101\r\n" in out and b"40 120" not in out:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                os.kill(p.pid, signal.SIGWINCH)
        elif p.poll() is not None:
            break
    assert p.wait(timeout=30) == 0, out
    os.close(master)
    return out


def test_exec_has_the_agents_isolation_and_no_more(tmp_path: Path, any_backend: str) -> None:
    with host_services() as svc:
        env = _manifest(tmp_path, any_backend, svc.port)
        with _running(env, tmp_path) as slug:
            r = bb(["exec", slug, "--", "python3", "/workspace/ident.py"], env, tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            agent = json.loads((tmp_path / "ws" / "agent.json").read_text())
            assert json.loads(r.stdout) == agent
            assert agent["status"]["Uid"].split()[0] != "0", agent
            assert agent["status"]["CapEff"] == "0000000000000000", agent
            assert agent["status"]["CapBnd"] == "0000000000000000", agent
            assert agent["status"]["NoNewPrivs"] == "1", agent
            # A filter on every backend (a microVM's agent gets it under its own kernel).
            assert agent["status"]["Seccomp"] == "2", agent
            assert agent["sockets"] == [], agent
            assert agent["env"]["HTTPS_PROXY"] == "http://127.0.0.1:3128", agent

            r = bb(["exec", slug, "--", "python3", "/workspace/probe.py"], env, tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            results = json.loads(r.stdout)
            assert results.pop("workspace") == "OK seen from exec\n", results
            assert results.pop("through_egress").startswith("OK 403 bot-bottle egress denied")
            escaped = {k: v for k, v in results.items() if not v.startswith("FAIL")}
            assert escaped == {}, escaped

            # Exit codes pass through; stdin reaches the command.
            r = bb(["exec", slug, "--", "sh", "-c", "exit 7"], env, tmp_path)
            assert r.returncode == 7, r.stdout + r.stderr
            r = subprocess.run([sys.executable, "-m", "bot_bottle", "exec", slug, "--", "cat"],
                               env=env, cwd=tmp_path, input="piped in\n", capture_output=True,
                               text=True, timeout=60, check=False)  # fmt: skip
            assert (r.returncode, r.stdout) == (0, "piped in\n"), r.stderr
            r = bb(["exec", slug, "--", "no-such-program"], env, tmp_path)
            # (Docker's engine says 126 and prints its refusal on stdout.)
            assert r.returncode in (126, 127), r.stdout + r.stderr
            assert "no-such-program" in r.stdout + r.stderr

            # No command: the bottle's shell, on a terminal.
            rc, out = _exec_in_pty(env, tmp_path, slug,
                                   b"test -t 0 && echo tty-$((6*7)); id -u; sleep 1; stty size; exit 3\n")  # fmt: skip
            assert rc == 3, out
            assert b"tty-42" in out, out
            # The terminal's size, copied onto the command's (the docker CLI resizes the
            # exec's terminal only after it started: hence the sleep before looking).
            assert b"33 101" in out, out
            assert agent["status"]["Uid"].split()[0].encode() in out, out

            if any_backend == "microvm":
                # Interrupted: the command is hung up in the guest too (one boot for all).
                _interrupt_ends_the_command(env, tmp_path, slug)
                # The exec's terminal follows a resize of the caller's, and what the
                # operator types there stays out of reach of the agent's processes
                # (the guest kernel's ptrace rules and the terminal's owner keep them out,
                # besides the filter).
                snooper = subprocess.Popen([sys.executable, "-m", "bot_bottle", "exec", slug,
                                            "--", "python3", "-c", SNOOP], env=env,
                                           cwd=tmp_path, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, text=True)  # fmt: skip
                assert b"33 101\r\n40 120" in _exec_resized(env, tmp_path, slug)
                snooped = json.loads(snooper.communicate(timeout=120)[0])
                assert snooped["found"], snooped
                reached = {k: v for k, v in snooped.items() if k != "found" and v == "OK"}
                assert reached == {}, snooped

            bb(["stop", slug], env, tmp_path)
            deadline = time.monotonic() + 30
            while [b for b in bottles(env, tmp_path) if b["status"] == "running"]:
                assert time.monotonic() < deadline, "the bottle did not stop"
                time.sleep(0.1)
            r = bb(["exec", slug, "--", "true"], env, tmp_path)
            assert r.returncode == 2, r.stdout + r.stderr
            assert f"bottle {slug} is not running" in r.stderr, r.stderr
    assert svc.tcp_peers == [] and svc.udp_peers == [], (svc.tcp_peers, svc.udp_peers)


def test_exec_of_an_unknown_bottle_says_so(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    r = bb(["exec", "nosuch-bottle-0000", "--", "true"], env, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no bottle named 'nosuch-bottle-0000'" in r.stderr, r.stderr
    r = bb(["exec", "--help"], env, tmp_path)
    assert r.returncode == 0 and "isolation" in r.stdout and "-- git status" in r.stdout


KILL_HELPER = r"""
import os, signal
for pid in os.listdir("/proc"):
    try:
        if pid.isdigit() and b"forwarder.py" in open(f"/proc/{pid}/cmdline", "rb").read():
            os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass
"""


def test_an_agent_that_stops_the_exec_helper_gets_a_clear_refusal(tmp_path: Path,
                                                                  bwrap_ok: None) -> None:  # fmt: skip
    """The agent can kill the in-bottle forwarder (its own child); exec then says so at
    once instead of hanging on a socket nobody accepts on (the launcher keeps no copy)."""
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "kill.py").write_text(KILL_HELPER)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        "    agent_provider: {template: command, command: [sh, -c, 'python3 /workspace/kill.py;"
        " echo x > /workspace/agent.json; exec sleep 300']}\n"
        "    egress: {routes: []}\n    workspace: {mode: mount, path: ws}\n"
        "    backend: namespace\nagents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
    with _running(env, tmp_path) as slug:
        start = time.monotonic()
        r = bb(["exec", slug, "--", "true"], env, tmp_path, timeout=60)
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"bottle {slug} does not answer exec" in r.stderr, r.stderr
        assert time.monotonic() - start < 5


# The agent takes over the forwarder's exec service and answers `bot-bottle exec` itself:
# the forwarder is its own child and runs as its user, so it may write the child's
# memory through /proc (seccomp refuses ptrace and pidfd_getfd, not that). It patches
# the code after the forwarder's blocked accept() to exec its own program with the new
# connection (x86_64), which then tries to hand the host descriptors of its own (a FIFO
# in the bottle, the pty it was sent) and floods the status line. The host must take
# none of them and end cleanly.
HIJACK = r"""
import os, struct
def log(m):
    with open("/workspace/hijack.log", "a") as f: f.write(m + "\n")
pumper = None
for pid in os.listdir("/proc"):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if pid.isdigit() and any(c.endswith(b"forwarder.py") for c in cmd) and b"exec" in cmd:
        pumper, fdno = int(pid), int(cmd[cmd.index(b"exec") + 1])
pc = None
import time
for _ in range(200):  # the forwarder's exec thread may not be in accept() yet
    for tid in os.listdir(f"/proc/{pumper}/task"):
        f = open(f"/proc/{pumper}/task/{tid}/syscall").read().split()
        if f[0] in ("43", "288") and int(f[1], 16) == fdno:  # accept/accept4 on the listener
            pc = int(f[-1], 16)
    if pc is not None:
        break
    time.sleep(0.05)
if pc is None:
    log("cannot take the listener: no accept found")
    raise SystemExit(0)
path, arg = b"/usr/bin/python3\0", b"/workspace/hijack2.py\0"
code = (bytes.fromhex("4889c7" "b848000000" "be02000000" "31d2" "0f05")  # fcntl(conn, F_SETFD, 0)
        + b"\x48\xbf" + b"PATHADDR" + b"\x48\xbe" + b"ARGVADDR"
        + bytes.fromhex("31d2" "b83b000000" "0f05" "ebfe"))  # execve(path, argv, NULL)
data_at = pc + len(code)
argv_at = data_at + len(path) + len(arg)
code = code.replace(b"PATHADDR", struct.pack("<Q", data_at))
code = code.replace(b"ARGVADDR", struct.pack("<Q", argv_at))
blob = code + path + arg + struct.pack("<QQQ", data_at, data_at + len(path), 0)
try:
    with open(f"/proc/{pumper}/mem", "r+b", buffering=0) as mem:
        mem.seek(pc)
        mem.write(blob)
except OSError as e:
    log(f"cannot take the listener: {e}")
    raise SystemExit(0)
log("listening")
"""
HIJACK2 = r"""
import os, socket, time
def log(m):
    with open("/workspace/hijack.log", "a") as f: f.write(m + "\n")
log("exec'd in the forwarder")
def connected(fd):  # a socket, not listening: the connection accept() returned
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    with s:
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
conn = socket.socket(fileno=max(fd for fd in map(int, os.listdir("/proc/self/fd")) if connected(fd)))
msg, fds, _f, _a = socket.recv_fds(conn, 65536, 3)
os.mkfifo("/tmp/bb-hijack-fifo")
fifo = os.open("/tmp/bb-hijack-fifo", os.O_RDWR)
socket.send_fds(conn, [b"started\n"], [fifo, *fds])
os.write(fds[1] if len(fds) == 3 else fds[0], b"shown by the agent\n")
log("sent")
time.sleep(4)
conn.sendall(b"x" * 100000)
conn.close()
log("done")
"""


def test_a_hijacked_exec_gets_nothing_into_the_host(tmp_path: Path, bwrap_ok: None) -> None:
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hijack.py").write_text(HIJACK)
    (ws / "hijack2.py").write_text(HIJACK2)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        "    agent_provider: {template: command, command: [sh, -c, 'echo x > /workspace/agent.json;"
        " python3 /workspace/hijack.py; exec sleep 300']}\n"
        "    egress: {routes: []}\n    workspace: {mode: mount, path: ws}\n"
        "    backend: namespace\nagents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
    log = ws / "hijack.log"
    with _running(env, tmp_path) as slug:
        deadline = time.monotonic() + 30
        while "listening" not in (log.read_text() if log.exists() else ""):
            assert "cannot take" not in (log.read_text() if log.exists() else ""), log.read_text()
            assert time.monotonic() < deadline, "the agent never took the listener"
            time.sleep(0.1)
        p = subprocess.Popen([sys.executable, "-m", "bot_bottle", "exec", slug, "--", "true"],
                             env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        # Everything the exec process holds, looked at until the agent is done with it.
        held = set()
        while "done" not in log.read_text() and p.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{p.pid}/fd"):
                    with contextlib.suppress(OSError):
                        held.add(os.readlink(f"/proc/{p.pid}/fd/{fd}"))
            time.sleep(0.02)
        out, err = p.communicate(timeout=30)
    assert not [h for h in held if "bb-hijack-fifo" in h or "ptmx" in h or "/pts/" in h], held
    assert "sent" in log.read_text()
    # What the agent printed is shown (it could print anything in a shell too); the
    # flood is no exit code, so exec says the bottle ended and exits 255.
    assert out == b"shown by the agent\n", out
    assert p.returncode == 255, (p.returncode, err)
    assert b"the bottle ended before the command did" in err and b"Traceback" not in err, err


def test_interrupting_exec_ends_its_command(tmp_path: Path, bwrap_ok: None) -> None:
    """^C on a command without a terminal: exec exits 130 (no traceback) and the
    command is hung up in the bottle, not left running there."""
    env = _manifest(tmp_path, "namespace", 9)
    with _running(env, tmp_path) as slug:
        _interrupt_ends_the_command(env, tmp_path, slug)


def _interrupt_ends_the_command(env: dict[str, str], tmp_path: Path, slug: str) -> None:
    p = subprocess.Popen([sys.executable, "-m", "bot_bottle", "exec", slug, "--", "sh", "-c",
                          "echo up; exec sleep 417"], env=env, cwd=tmp_path,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdout is not None and p.stdout.readline() == b"up\n"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and b"Traceback" not in err, err
    r = bb(["exec", slug, "--", "sh", "-c", "sleep 0.5; ps -eo args"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sleep 417" not in r.stdout, r.stdout
