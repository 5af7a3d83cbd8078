"""Escape attempts from inside a real bottle, on every backend, through `bot-bottle run`.

The agent is a probe script. Each way out must fail: the host's SSH key, host TCP
and UDP services on loopback and on the host's own address (which record anything
that reaches them), any default route out of the bottle, DNS, a request with the
proxy variables ignored, and any visible process environment holding the sidecar's
credential. One request through egress must still get egress's 403, so a broken
bottle cannot pass by failing everything. No probe targets an address off this
machine: the routing table answers "could it get out" without sending anything.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from e2e_support import assert_not_written, base_env, bb, bottles, hand_over, trust
from netprobe import DEFAULT_ROUTES, HostServices, host_address, host_services

pytestmark = pytest.mark.e2e
SECRET = "ghp_" + "EscapeTestSidecarCredential0123456789"

PROBE = r"""
import glob, json, os, socket, subprocess, urllib.request
r = {}
def attempt(name, fn):
    try:
        r[name] = "OK " + str(fn())[:200]
    except Exception as e:
        r[name] = "FAIL " + type(e).__name__
def connect(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
    s.connect((host, port)); s.close(); return "connected"
def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"escape attempt", (host, port)); return "sent"
def default_routes():
    out = subprocess.run(["python3", "-c", os.environ["ROUTES_PROBE"]], capture_output=True,
                         text=True, check=True).stdout.strip()
    if out == "none": raise LookupError(out)
    return out
def no_proxy_curl(host, port):
    # Aimed at the host service, not a public site: a broken bottle must not send
    # anything off this machine. 52 (empty reply) means it connected.
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "--noproxy", "*",
                        f"http://{host}:{port}/"], capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"]})
    if p.returncode not in (0, 52): raise OSError(p.stderr.strip())
    return f"curl exit {p.returncode}"
def environ_holding_secret():
    # The secret arrives in two halves so that this process's own env does not hold it.
    needle = (os.environ["NEEDLE_A"] + os.environ["NEEDLE_B"]).encode()
    hits = []
    for f in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if needle in open(f, "rb").read(): hits.append(f)
        except OSError:
            pass
    if not hits: raise LookupError("none")
    return hits
def through_egress():
    try:
        urllib.request.urlopen("http://example.com/", timeout=10)
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode()[:80]}"
    return "no error"
def write(path):
    with open(path, "w") as f:
        f.write("x")
    return "written"
attempt("host_ssh_key", lambda: open(os.environ["HOST_KEY"]).read())
attempt("write_usr", lambda: write("/usr/bin/bot-bottle-escape"))
attempt("write_etc_passwd", lambda: write("/etc/passwd"))
attempt("home_ssh_dir", lambda: os.listdir(os.path.expanduser("~/.ssh")))
attempt("host_loopback_service", lambda: connect("127.0.0.1", int(os.environ["HOST_PORT"])))
attempt("host_address_service", lambda: connect(os.environ["HOST_IP"], int(os.environ["HOST_PORT"])))
attempt("default_route", default_routes)
if r["default_route"].startswith("OK v4"):
    gateway = r["default_route"].split()[-1]  # a Docker internal network's gateway
    attempt("gateway_service", lambda: connect(gateway, int(os.environ["HOST_PORT"])))
attempt("dns_lookup", lambda: socket.getaddrinfo("example.com", 443))
for host in ("127.0.0.1", os.environ["HOST_IP"]):
    try:
        udp(host, int(os.environ["HOST_PORT"]))  # the host side says whether it arrived
    except OSError:
        pass
attempt("proxy_ignored", lambda: no_proxy_curl(os.environ["HOST_IP"], os.environ["HOST_PORT"]))
attempt("secret_in_visible_process", environ_holding_secret)
attempt("through_egress", through_egress)
print(json.dumps(r))
"""


def test_no_way_out(tmp_path: Path, any_backend: str) -> None:
    with host_services() as svc:
        run_probe(tmp_path, any_backend, svc)
    assert svc.tcp_peers == [] and svc.udp_peers == [], (svc.tcp_peers, svc.udp_peers)


def run_probe(tmp_path: Path, bottle_backend: str, svc: HostServices) -> None:
    env = base_env(tmp_path)
    ssh = Path(env["HOME"]) / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nhost-key-bytes\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(PROBE)
    (tmp_path / "bot-bottle.yaml").write_text(
        f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/probe.py > /workspace/escape.json"]
    egress:
      routes:
        - host: api.github.com
          auth: {{scheme: Bearer, token_ref: FAKE_GH}}
    env:
      HOST_KEY: "{ssh / "id_ed25519"}"
      HOST_PORT: "{svc.port}"
      HOST_IP: "{host_address()}"
      ROUTES_PROBE: {json.dumps(DEFAULT_ROUTES)}
      NEEDLE_A: "{SECRET[:12]}"
      NEEDLE_B: "{SECRET[12:]}"
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  probe: {{bottle: b}}
""".replace("{}", SECRET[12:])
    )
    env["FAKE_GH"] = SECRET
    hand_over(ws)
    trust(env, tmp_path)
    # Kept, so that what the bottle wrote of its own is still there to search for SECRET.
    r = bb(["run", "probe", "-y", "--keep"], env, tmp_path, timeout=180)
    try:
        assert r.returncode == 0, r.stderr
        results = json.loads((ws / "escape.json").read_text())
        assert results.pop("through_egress").startswith("OK 403 bot-bottle egress denied"), results
        # No backend gives the bottle a route: Docker bottles have no network at all.
        assert "gateway_service" not in results, results
        escaped = {k: v for k, v in results.items() if not v.startswith("FAIL")}
        assert escaped == {}, escaped
        assert SECRET not in r.stdout + r.stderr
        assert_not_written(tmp_path, SECRET, bottle_backend)
    finally:
        slugs = [b["slug"] for b in bottles(env, tmp_path)]
        if slugs:
            bb(["rm", *slugs], env, tmp_path)


# Every socket family the kernel knows beyond Unix and IP, tried with each socket type
# (a family refused for one type may accept another). Creating the socket proves the
# channel; nothing here ever connects one (a vsock connect would reach the hypervisor).
# io_uring can create sockets without the socket(2) syscall (IORING_OP_SOCKET), and the
# 32-bit x86 ABI (`int 0x80`, socketcall) is a second syscall table a filter on x86_64
# numbers would not see; both must be refused too.
FAMILIES_PROBE = r"""
import ctypes, errno, json, mmap, os, platform, socket, subprocess, sys
r = {}
types = (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET)
for fam in range(0, 46):
    for typ in types:
        try:
            s = socket.socket(fam, typ)
        except OSError as e:
            r[str(fam)] = errno.errorcode.get(e.errno, str(e.errno))
        else:
            s.close()
            r[str(fam)] = "OK"
            break
pair = socket.socketpair(socket.AF_UNIX)
r["socketpair_unix"] = "OK"
for proto in (0, 2, 4, 9, 15, 16):  # route, firewall, sock_diag, audit, uevent, generic
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close()
        r[f"netlink_{proto}"] = "OK"
    except OSError as e:
        r[f"netlink_{proto}"] = errno.errorcode.get(e.errno, str(e.errno))
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
nr = {"x86_64": 425, "aarch64": 425}[platform.machine()]
fd = libc.syscall(nr, 8, params)
r["io_uring_setup"] = "OK" if fd >= 0 else errno.errorcode[ctypes.get_errno()]
# personality(2): the query and plain Linux are fine; ADDR_NO_RANDOMIZE (turning off
# ASLR for what the agent runs next) and other flags are not for a coding agent.
libc.personality.argtypes = [ctypes.c_ulong]
r["personality_query"] = "OK" if libc.personality(0xFFFFFFFF) >= 0 else "refused"
no_aslr = libc.personality(0x0040000)
r["personality_no_aslr"] = "OK" if no_aslr >= 0 else errno.errorcode[ctypes.get_errno()]
if platform.machine() == "x86_64":
    # mov eax, 20 (i386 getpid); int 0x80; ret -- in a child: a filter may kill it.
    code = ("import ctypes, mmap; m = mmap.mmap(-1, 4096, prot=7);"
            "m.write(bytes.fromhex('b814000000cd80c3'));"
            "f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)));"
            "print(f())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    out = p.stdout.strip()
    r["i386_abi"] = ("OK" if p.returncode == 0 and out.lstrip("-").isdigit() and int(out) > 0
                     else f"refused {p.returncode} {out}")
print(json.dumps(r))
"""
ALLOWED_FAMILIES = {str(socket.AF_UNIX), str(socket.AF_INET), str(socket.AF_INET6)}


def test_only_unix_and_ip_sockets(tmp_path: Path, bottle_backend: str) -> None:
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(FAMILIES_PROBE)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/probe.py > /workspace/families.json"]
    egress: {{routes: []}}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  probe: {{bottle: b}}
"""
    )
    trust(env, tmp_path)
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    results = json.loads((ws / "families.json").read_text())
    assert results.pop("socketpair_unix") == "OK"
    for fam in ALLOWED_FAMILIES:
        assert results.pop(fam) == "OK", (fam, results)
    # Netlink for routes only (getifaddrs, which Node's os.networkInterfaces needs).
    assert results.pop(str(socket.AF_NETLINK)) == "OK"
    assert results.pop("netlink_0") == "OK"
    assert results.pop("io_uring_setup") != "OK", "io_uring can create sockets unfiltered"
    assert results.pop("personality_query") == "OK"
    assert results.pop("personality_no_aslr") == "EPERM", "personality(2) can turn off ASLR"
    if "i386_abi" in results:
        assert results.pop("i386_abi") != "OK", "the 32-bit syscall table is open"
    created = {fam: v for fam, v in results.items() if v == "OK"}
    assert created == {}, f"sockets beyond Unix/IPv4/IPv6/route netlink can be made: {created}"
    vsock = results[str(socket.AF_VSOCK)]
    assert vsock in ("EPERM", "EAFNOSUPPORT"), vsock
