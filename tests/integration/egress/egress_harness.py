"""Harness: a fake HTTPS upstream and a real `bot-bottle egress serve` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from egress_upstream import Upstream, start_upstream

SECRET = "sk-fake-SECRET-123abc456def789ghi"
PROTECTED = "hostsecret-PROTECT-zz9-plural-z-alpha"
CANARY = "AKIAFAKECANARY0000001"


def serve_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "bot_bottle", *args]


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    up = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield up
    up.stop()


def routes_doc(up: Upstream, routes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    # The fake upstream listens on an ephemeral port, which a route must declare
    # (routes default to 443); a test that names a port keeps it.
    doc: dict[str, Any] = {
        "version": 1,
        "bottle": "test-bottle",
        "routes": [{"port": up.port, **r} for r in routes],
        "hosts": {
            "api.example.test": "127.0.0.1",
            "other.example.test": "127.0.0.1",
            "pass.example.test": "127.0.0.1",
            "loop.example.test": "127.0.0.1",
        },
        "ssrf_ip_allowlist": ["127.0.0.1/32"],
        "upstream_ca": str(up.ca_path),
        "dlp": {
            "enabled": True,
            "patterns": [r"ghp_[A-Za-z0-9]{36}"],
            "protect_slots": ["EGRESS_PROTECT_0"],
            "canaries": [CANARY],
        },
    }
    doc.update(extra)
    return doc


DEFAULT_ROUTES: list[dict[str, Any]] = [
    {
        "host": "api.example.test",
        "paths": ["/v1", "/sse", "/ws", "/repo.git"],
        "methods": ["GET", "POST"],
        "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"},
    },
    {
        "host": "other.example.test",
        "auth": {"scheme": "header", "header": "x-api-key", "slot": "EGRESS_TOKEN_1"},
    },
    {"host": "pass.example.test", "tls_passthrough": True},
    {"host": "loop.example.test"},
]


@dataclass
class Egress:
    proc: subprocess.Popen[str]
    address: str
    routes_path: Path
    audit_path: Path
    confdir: Path
    tmp: Path
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def proxy(self) -> str:
        return f"http://{self.address}"

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def audit(self) -> list[dict[str, Any]]:
        # The last line may be mid-write; only newline-terminated lines are complete.
        return [json.loads(x) for x in self.audit_path.read_text().split("\n")[:-1] if x]

    def wait_audit(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """The newest audit record matching `pred`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.audit() if self.audit_path.exists() else []
            for rec in reversed(recs):
                if pred(rec):
                    return rec
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching audit record in {recs[-5:]}")
            time.sleep(0.05)

    def write_routes(self, doc: dict[str, Any]) -> None:
        tmp = self.routes_path.with_suffix(".new")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.routes_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _drain(stream: Any, sink: list[str], ready: threading.Event | None) -> None:
    for line in stream:
        sink.append(line)
        if ready is not None and line.startswith("READY "):
            ready.set()
    if ready is not None:
        ready.set()


def start_egress(
    tmp: Path,
    doc: dict[str, Any],
    listen: str = "127.0.0.1:0",
    extra_env: dict[str, str] | None = None,
) -> Egress:
    tmp.mkdir(parents=True, exist_ok=True)
    routes_path = tmp / "routes.json"
    routes_path.write_text(json.dumps(doc))
    audit_path, confdir = tmp / "audit.jsonl", tmp / "conf"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env.update(
        {
            "EGRESS_TOKEN_0": SECRET,
            "EGRESS_TOKEN_1": SECRET + "-two",
            "EGRESS_PROTECT_0": PROTECTED,
            **(extra_env or {}),
        }
    )
    argv = serve_argv(
        [
            "egress",
            "serve",
            "--routes",
            str(routes_path),
            "--listen",
            listen,
            "--audit-log",
            str(audit_path),
            "--confdir",
            str(confdir),
        ]
    )
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[3]),
    )
    eg = Egress(proc, "", routes_path, audit_path, confdir, tmp)
    ready = threading.Event()
    threading.Thread(target=_drain, args=(proc.stdout, eg.stdout, ready), daemon=True).start()
    threading.Thread(target=_drain, args=(proc.stderr, eg.stderr, None), daemon=True).start()
    if not ready.wait(30) or not eg.stdout or not eg.stdout[-1].startswith("READY "):
        eg.stop()
        raise RuntimeError(f"egress did not become ready: {eg.stdout} {eg.stderr}")
    eg.address = eg.stdout[-1].split(" ", 1)[1].strip()
    return eg


@pytest.fixture
def make_egress(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., Egress]]:
    started: list[Egress] = []

    def make(
        routes: list[dict[str, Any]] | None = None,
        doc_extra: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Egress:
        doc = routes_doc(
            upstream, DEFAULT_ROUTES if routes is None else routes, **(doc_extra or {})
        )
        eg = start_egress(tmp_path / f"egress{len(started)}", doc, **kw)
        started.append(eg)
        return eg

    yield make
    for eg in started:
        eg.stop()


@pytest.fixture(scope="module")
def egress(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Egress]:
    eg = start_egress(tmp_path_factory.mktemp("egress"), routes_doc(upstream, DEFAULT_ROUTES))
    yield eg
    eg.stop()


def curl(eg: Egress, *args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run curl through the egress; returns (http status, body, stderr)."""
    out = subprocess.run(
        ["curl", "-sS", "--proxy", eg.proxy, "--cacert", str(eg.ca), "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body, out.stderr
