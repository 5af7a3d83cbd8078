"""An https upstream that demands a token: the gate fetches and pushes with the token
from its own environment (the manifest's `token_ref`, in `GIT_GATE_TOKEN_n`), and the
agent's clone, env and config never hold it."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from git_gate_harness import git, read_ready

from bot_bottle.sidecars.git_gate.config import gate_remote_url

pytestmark = pytest.mark.integration
TOKEN = "ghs_" + "HttpsUpstreamToken0123456789abcdefABCD"
EXPECTED = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@dataclass
class HttpsUpstream:
    url: str
    bare: Path
    ca_path: Path
    auth_seen: list[str] = field(default_factory=list)


@pytest.fixture
def https_upstream(tmp_path: Path) -> Iterator[HttpsUpstream]:
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
            if auth != EXPECTED:
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


def test_gate_uses_the_token_the_agent_never_holds(
    tmp_path: Path, https_upstream: HttpsUpstream
) -> None:
    up = https_upstream
    d = tmp_path / "gate"
    (d / "home").mkdir(parents=True)
    remote = {"name": "origin", "url": up.url, "token_slot": "GIT_GATE_TOKEN_0"}
    (d / "gate.json").write_text(json.dumps({"remotes": [remote]}))
    env = {"PATH": os.environ["PATH"], "HOME": str(d / "home"), "GIT_SSL_CAINFO": str(up.ca_path),
           "GIT_GATE_TOKEN_0": TOKEN}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(d / "gate.json"),
         "--listen", "127.0.0.1:0", "--audit-log", str(d / "audit.jsonl"),
         "--state", str(d / "state")],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = int(read_ready(proc).rsplit(":", 1)[1])
        home = tmp_path / "agent-home"
        home.mkdir()
        agent_env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                     "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
                     "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip
        work = tmp_path / "work"
        git("clone", "-q", gate_remote_url("origin", port), str(work), env=agent_env)
        (work / "f.txt").write_text("from the agent\n")
        git("add", "f.txt", cwd=work, env=agent_env)
        git("commit", "-qm", "agent change", cwd=work, env=agent_env)
        git("push", "-q", "origin", "HEAD:refs/heads/agent/https", cwd=work, env=agent_env)
    finally:
        proc.terminate()
        proc.wait(10)
    pushed = git("--git-dir", str(up.bare), "log", "-1", "--format=%s", "refs/heads/agent/https")
    assert pushed == "agent change"
    assert EXPECTED in up.auth_seen  # the token reached upstream, from the gate
    held = [p for p in [*home.rglob("*"), *work.rglob("*")] if p.is_file()]
    assert not any(TOKEN.encode() in p.read_bytes() for p in held)
    assert TOKEN not in json.dumps(agent_env)
    assert TOKEN not in (d / "audit.jsonl").read_text()


def test_wrong_token_is_refused_upstream(tmp_path: Path, https_upstream: HttpsUpstream) -> None:
    """The fake upstream really checks the token (so the test above can fail)."""
    r = subprocess.run(
        ["git", "-c", f"http.sslCAInfo={https_upstream.ca_path}", "ls-remote", https_upstream.url],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0",
                                             "HOME": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode != 0 and "" in https_upstream.auth_seen
