"""A real upstream behind a real sshd on loopback, and a git gate that alone holds its key.

sshd runs as root from a throwaway config under tmp (own host key, own
authorized_keys, `StrictModes no`, `UsePAM no`). The gate is `bot-bottle git-gate
serve` in a subprocess with the key path in its environment. The "agent" is plain
`git` with an empty HOME and an environment holding no key.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from bot_bottle.sidecars.git_gate.config import gate_remote_url

SSHD = "/usr/sbin/sshd"
DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Readiness probe: sshd has no READY line, so connect until it answers."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("sshd did not answer")


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {p.stderr}")
    return p.stdout.strip()


def seed_bare(bare: Path) -> Path:
    """A bare repository with one commit (README) on `main`, as an upstream."""
    git("init", "--bare", "-q", "-b", "main", str(bare))
    seed = bare.parent / f"{bare.name}-seed"
    git("init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("hello\n")
    git("-c", "user.name=h", "-c", "user.email=h@x", "add", ".", cwd=seed)
    git("-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "seed", cwd=seed)
    git("push", "-q", str(bare), "main", cwd=seed)
    return bare


@dataclass
class Upstream:
    bare: Path
    url: str
    key: Path
    known_hosts: Path

    def rev(self, ref: str) -> str:
        p = subprocess.run(
            ["git", "--git-dir", str(self.bare), "rev-parse", "--verify", "-q", ref],
            capture_output=True, text=True,
        )  # fmt: skip
        return p.stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    if not os.path.exists(SSHD) or os.geteuid() != 0:
        pytest.fail("these tests need root and /usr/sbin/sshd (openssh-server)")
    d = tmp_path_factory.mktemp("upstream")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    for name in ("host", "gate"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "gate.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "AllowUsers root\nLogLevel ERROR\n"
    )
    host_pub = (d / "host.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    bare = d / "repo.git"
    git("init", "--bare", "-q", "-b", "main", str(bare))
    seed = d / "seed"
    git("init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("hello\n")
    git("-c", "user.name=h", "-c", "user.email=h@x", "add", ".", cwd=seed)
    git("-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "seed", cwd=seed)
    git("push", "-q", str(bare), "main", cwd=seed)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")])
    try:
        wait_port(port, proc)
        yield Upstream(bare, f"ssh://root@127.0.0.1:{port}{bare}", d / "gate", d / "known_hosts")
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class GateProc:
    port: int
    audit: Path
    state: Path
    proc: subprocess.Popen[str]

    def url(self, remote: str = "origin") -> str:
        return gate_remote_url(remote, self.port)


def read_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if sel.select(end - time.monotonic()):
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return line.split()[1]
            if not line:
                break
    raise RuntimeError(f"gate not ready (exit {proc.poll()})")


def start_gate(d: Path, remote: dict[str, object], env: dict[str, str] | None = None) -> GateProc:
    """`bot-bottle git-gate serve` for one remote (config written to `d`), with the given
    extra environment (the host's upstream credentials); stop it with `stop_gate`."""
    cfg = d / "gate.json"
    cfg.write_text(json.dumps({"remotes": [remote]}))
    (d / "home").mkdir(exist_ok=True)
    full_env = {"PATH": os.environ["PATH"], "HOME": str(d / "home"), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(cfg),
         "--listen", "127.0.0.1:0", "--audit-log", str(d / "audit.jsonl"),
         "--state", str(d / "state")],
        env=full_env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        addr = read_ready(proc)
    except BaseException:
        stop_gate(proc)
        raise
    return GateProc(int(addr.rsplit(":", 1)[1]), d / "audit.jsonl", d / "state", proc)


def stop_gate(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)


def ssh_env(upstream: Upstream) -> dict[str, str]:
    return {
        "BOT_BOTTLE_GIT_SSH_KEY": str(upstream.key),
        "BOT_BOTTLE_GIT_SSH_KNOWN_HOSTS": str(upstream.known_hosts),
    }


@pytest.fixture(scope="module")
def gate(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateProc]:
    remote = {"name": "origin", "url": upstream.url, "protected_refs": ["main"],
              "allowed_refs": ["main", "agent/**"]}  # fmt: skip
    g = start_gate(tmp_path_factory.mktemp("gate"), remote, ssh_env(upstream))
    try:
        yield g
    finally:
        stop_gate(g.proc)


@dataclass
class Agent:
    """A clone made the way the bottle makes it: through the gate, holding nothing."""

    repo: Path
    env: dict[str, str]
    home: Path

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.repo, env=self.env)

    def try_git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True
        )

    def commit(self, path: str, content: str, msg: str = "change") -> str:
        f = self.repo / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-qm", msg)
        return self.git("rev-parse", "HEAD")


def make_agent(gate: GateProc, tmp_path: Path, remote: str = "origin") -> Agent:
    """A clone through `gate` by plain git with an empty HOME and no key."""
    home = tmp_path / "agent-home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "agent", "GIT_AUTHOR_EMAIL": "agent@bottle",
        "GIT_COMMITTER_NAME": "agent", "GIT_COMMITTER_EMAIL": "agent@bottle",
    }  # fmt: skip
    repo = tmp_path / "work"
    git("clone", "-q", gate.url(remote), str(repo), env=env)
    return Agent(repo, env, home)


@pytest.fixture
def agent(gate: GateProc, tmp_path: Path) -> Agent:
    return make_agent(gate, tmp_path)


def host_clone(upstream: Upstream, dest: Path) -> Path:
    """The operator's own clone of upstream (plain file access, outside any gate)."""
    shutil.rmtree(dest, ignore_errors=True)
    git("clone", "-q", str(upstream.bare), str(dest))
    return dest


HTTPS_TOKEN = "ghs_" + "HttpsUpstreamToken0123456789abcdefABCD"
EXPECTED_AUTH = "Basic " + base64.b64encode(f"x-access-token:{HTTPS_TOKEN}".encode()).decode()


@dataclass
class HttpsUpstream:
    url: str
    bare: Path
    ca_path: Path
    auth_seen: list[str] = field(default_factory=list)


@pytest.fixture
def https_upstream(  # an https git server (git http-backend) that demands HTTPS_TOKEN
    tmp_path: Path,
) -> Iterator[HttpsUpstream]:
    root = tmp_path / "srv"
    bare = root / "repo.git"
    git("init", "--bare", "-q", "-b", "main", str(bare))
    git("--git-dir", str(bare), "config", "http.receivepack", "true")
    seed = tmp_path / "seed"
    git("init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("hello\n")
    git("-c", "user.name=h", "-c", "user.email=h@x", "add", ".", cwd=seed)
    git("-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "seed", cwd=seed)
    git("push", "-q", str(bare), "main", cwd=seed)
    ca = trustme.CA()
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _cgi(self) -> None:
            auth = self.headers.get("Authorization", "")
            seen.append(auth)
            if auth != EXPECTED_AUTH:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path, _, query = self.path.partition("?")
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root),
                   "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                   "REQUEST_METHOD": self.command, "REMOTE_USER": "x-access-token",
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "CONTENT_LENGTH": str(len(body))}  # fmt: skip
            if enc := self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = enc
            if proto := self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = proto
            out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                 capture_output=True, check=True).stdout  # fmt: skip
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                k, _, v = line.partition(":")
                if k.lower() == "status":
                    status = int(v.split()[0])
                else:
                    headers.append((k, v.strip()))
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _cgi

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}/repo.git"
        yield HttpsUpstream(url, bare, ca_path, seen)
    finally:
        srv.shutdown()
        srv.server_close()
