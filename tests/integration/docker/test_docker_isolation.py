"""The agent container has no network: it reaches the sidecars at 127.0.0.1:PORT
through the in-bottle forwarder and nothing else, resolves no name, and runs as a user
with no capabilities."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from docker_harness import FakeSidecar
from netprobe import host_address

from bot_bottle.backends.spec import BottleSpec

pytestmark = [pytest.mark.docker, pytest.mark.integration]

PROBE = r"""
import json, socket, sys
def connect(host, port):
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return "ok:" + s.recv(200).decode(errors="replace")
    except OSError as e:
        return "fail:" + type(e).__name__
    finally:
        s.close()
targets = json.loads(sys.argv[1])
print(json.dumps({f"{h}:{p}": connect(h, p) for h, p in targets}))
"""


@pytest.fixture
def host_listener() -> object:
    """A TCP service on every host address, as a host's sshd or dashboards would be."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.sendall(b"host service\n")

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


KILL_FORWARDER = r"""
import glob, os, signal
for path in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        pid = int(path.split("/")[2])
        if pid == os.getpid() or not open(path, "rb").read().startswith(b"python3\0-I\0-S"):
            continue
        os.kill(pid, signal.SIGKILL)
        print("killed")
    except PermissionError:
        print("PermissionError")
    except OSError:
        pass
"""


def test_agent_reaches_sidecar_and_nothing_else(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar, host_listener: int
) -> None:
    target = backend.prepare(spec)  # type: ignore[attr-defined]
    target.container.reload()
    assert target.container.status == "running"
    targets = [
        ("127.0.0.1", 3128),  # the egress sidecar, forwarded to the host socket
        (host_address(), host_listener),  # a host service on the host's address
    ]
    # The host's own address on the default bridge: read from the engine, never a
    # guessed address that could belong to another machine.
    gateway = _network_gateway("bridge")
    if gateway:
        targets.append((gateway, host_listener))
    r = target.run(["python3", "-c", PROBE, json.dumps(targets)])
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["127.0.0.1:3128"].endswith("hello from egress"), result
    assert fake_egress.connections == 1
    leaks = {k: v for k, v in result.items() if k != "127.0.0.1:3128" and v.startswith("ok")}
    assert leaks == {}, f"the agent reached beyond its sidecar: {leaks}"

    interfaces = target.run(["cat", "/proc/net/dev"]).stdout
    names = sorted(line.split(":")[0].strip() for line in interfaces.splitlines()[2:])
    assert names == ["lo"], names  # loopback, no more

    # The forwarder runs as the sockets' owner; the agent (another uid) reaches the
    # sidecar only through it, and can neither open the sockets nor signal it.
    direct = target.run(["python3", "-c", "import socket; s = socket.socket(socket.AF_UNIX);"
                         " s.connect('/run/bot-bottle/egress/egress.sock')"])  # fmt: skip
    assert direct.returncode != 0 and "PermissionError" in direct.stderr, direct
    kill = target.run(["python3", "-c", KILL_FORWARDER])
    # Both python3 processes of the launcher's uid: the forwarder and the lifeline holder.
    assert kill.returncode == 0 and kill.stdout.split() == ["PermissionError"] * 2, kill
    after = target.run(["python3", "-c", PROBE, json.dumps([("127.0.0.1", 3128)])])
    assert json.loads(after.stdout)["127.0.0.1:3128"].endswith("hello from egress")


def test_containers_run_unprivileged(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    import docker

    target = backend.prepare(spec)  # type: ignore[attr-defined]
    status = target.run(["cat", "/proc/self/status"]).stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "1000"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap], 16) == 0, (cap, fields[cap])
    assert fields["NoNewPrivs"].strip() == "1"
    ro = target.run(["touch", "/usr/bin/evil"])
    assert ro.returncode != 0 and "Read-only" in ro.stderr

    client = docker.from_env()
    c = client.containers.get(f"bb-{spec.slug}-agent")
    hc = c.attrs["HostConfig"]
    assert hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
    assert any(o.startswith("seccomp=") for o in hc["SecurityOpt"])
    assert hc["ReadonlyRootfs"] is True and not hc["Privileged"]
    assert hc["NanoCpus"] == 1_000_000_000 and hc["Memory"] == 512 * 1024**2
    assert hc["NetworkMode"] == "none"
    assert [x.name for x in client.containers.list(all=True,
            filters={"label": f"bot-bottle.slug={spec.slug}"})] == [c.name]  # fmt: skip
    assert client.networks.list(filters={"label": f"bot-bottle.slug={spec.slug}"}) == []


def test_workspace_copied_and_provisioning_lands(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    target = backend.prepare(spec)  # type: ignore[attr-defined]
    assert target.run(["cat", "hello.txt"]).stdout == "from the host workspace\n"
    target.put_file("~/.bot-bottle/ca-bundle.pem", b"PEM\n", 0o600)
    r = target.run(["sh", "-c", "stat -c '%u %a' ~/.bot-bottle/ca-bundle.pem; echo $HTTPS_PROXY"])
    assert r.stdout.split("\n")[:2] == ["1000 600", "http://127.0.0.1:3128"]


def test_read_file_takes_only_the_agents_plain_files(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    """What `read_file` gives provisioning to merge: a regular file, within the limit;
    a link the agent planted reads as absent, not as what it points to."""
    target = backend.prepare(spec)  # type: ignore[attr-defined]
    r = target.run(["sh", "-c", "cd ~ && echo '{\"a\": 1}' > ok.json && "
                    "ln -s /etc/hostname link.json && head -c 2000 /dev/zero > big.json && "
                    "mkdir d"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert target.read_file("~/ok.json", 100) == b'{"a": 1}\n'
    assert target.read_file("~/link.json", 100) is None
    assert target.read_file("~/big.json", 1000) is None
    assert target.read_file("~/d", 100) is None
    assert target.read_file("~/missing.json", 100) is None


def _network_gateway(name: str) -> str:
    import docker

    net = docker.from_env().networks.get(name)
    cfg = net.attrs["IPAM"]["Config"] or [{}]
    return str(cfg[0].get("Gateway", ""))


def test_mounted_workspace_is_edited_as_its_owner(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    import dataclasses
    import os
    from pathlib import Path

    ws = Path(spec.workspace_path)
    if os.geteuid() == 0:  # a root-owned workspace is refused: it is a user's directory
        os.chown(ws, 1000, 1000)
    mounted = dataclasses.replace(spec, workspace_mode="mount")
    target = backend.prepare(mounted)  # type: ignore[attr-defined]
    target.put_file("~/.config/x", b"1")
    r = target.run(["sh", "-c", "id -u; echo from-bottle > out.txt; cat ~/.config/x"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(ws.stat().st_uid), "1"]
    assert (ws / "out.txt").read_text() == "from-bottle\n"
    assert (ws / "out.txt").stat().st_uid == os.stat(ws).st_uid


# Asks only what the bottle itself can answer: its interfaces, its routes, whether a
# DNS service listens where resolv.conf points (a UDP connect sends nothing; with no
# route it fails at once), and whether names Docker's embedded resolver answers from
# its own table (this bottle's containers) resolve. No query for an outside name.
DNS_PROBE = r"""
import json, socket, sys
r = {}
r["interfaces"] = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:])
r["routes"] = [l.split()[0] for l in open("/proc/net/route").readlines()[1:]]
servers = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")]
reach = {}
for ns in servers:
    fam = socket.AF_INET6 if ":" in ns else socket.AF_INET
    if ns.startswith("127.") or ns == "::1":
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(2)
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((ns, 53)); reach[ns] = "reachable"
    except OSError as e:
        reach[ns] = "unreachable " + type(e).__name__
    finally:
        s.close()
r["nameservers"] = reach
names = {}
for name in sys.argv[1:]:
    try:
        names[name] = socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    except OSError as e:
        names[name] = "FAIL " + type(e).__name__
r["names"] = names
print(json.dumps(r))
"""


def test_no_name_resolves_in_the_bottle(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    target = backend.prepare(spec)  # type: ignore[attr-defined]
    # Names the embedded resolver knows in today's-main shape (the relay's alias and
    # container name); a name it does not know, it would forward to the host's resolver.
    local_names = ["sidecar", f"bb-{spec.slug}-sidecar"]
    r = target.run(["python3", "-c", DNS_PROBE, *local_names])
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["interfaces"] == ["lo"], result
    assert result["routes"] == [], result
    reachable = {ns: v for ns, v in result["nameservers"].items() if v == "reachable"}
    assert reachable == {}, f"a DNS service answers inside the bottle: {reachable}"
    resolved = {n: v for n, v in result["names"].items() if not v.startswith("FAIL")}
    assert resolved == {}, f"names resolve inside the bottle: {resolved}"
