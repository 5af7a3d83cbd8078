"""Shared pieces of benchmarks/load.py and benchmarks/bulk.py: the fake upstream, a bare
mitmdump, a real bottle running `loadgen.py`, and a host-side RSS sampler.

Every setup runs the same `loadgen.py` against the same upstream, so the figures of one
run compare as ratios (the machine is shared: absolute numbers are noisy).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "api.example.test"


@dataclass(frozen=True)
class Upstream:
    port: int
    ca: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def upstream(tmp: Path, kind: str = "asyncio") -> Iterator[Upstream]:
    """The fake HTTPS upstream: `asyncio` (fake_https.py, its own process) or `threaded`
    (the integration tests' ThreadingHTTPServer, in this process)."""
    if kind == "threaded":
        sys.path.insert(0, str(ROOT / "tests" / "integration" / "egress"))
        from egress_upstream import start_upstream

        up = start_upstream(tmp)
        try:
            yield Upstream(up.port, up.ca_path)
        finally:
            up.stop()
        return
    p = subprocess.Popen([sys.executable, str(HERE / "fake_https.py"), str(tmp)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert p.stdout is not None
        _, port, ca = p.stdout.readline().split()
        yield Upstream(int(port), Path(ca))
    finally:
        p.terminate()
        p.wait(10)


def loadgen(
    cfg: dict[str, Any], up: Upstream, proxy: str, ca: Path, connect: str = "127.0.0.1"
) -> dict[str, Any]:
    """Run loadgen.py on the host (direct or through `proxy`, CONNECTing to `connect`)."""
    full = {**cfg, "host": HOST, "connect": connect, "port": up.port, "proxy": proxy,
            "ca": str(ca)}  # fmt: skip
    r = subprocess.run([sys.executable, str(HERE / "loadgen.py"), json.dumps(full)],
                       capture_output=True, text=True, check=True)  # fmt: skip
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@dataclass
class RssSampler:
    """Samples the resident set (MiB) of the processes `find` returns, every `every` s."""

    find: Callable[[], list[int]]
    every: float = 1.0
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = sum(rss_mib(pid) for pid in self.find())
            if total:
                self.samples.append(round(total, 1))

    def summary(self) -> str:
        s = self.samples
        if not s:
            return "no samples"
        step = max(1, len(s) // 8)
        return f"peak {max(s):.0f} MiB; over time " + " ".join(f"{v:.0f}" for v in s[::step])


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sidecar_pids(home: Path) -> list[int]:
    """The sidecars of every bottle under `home`, as their launchers recorded them: a
    sidecar forked by the per-user egress helper has the helper's command line, so
    matching command lines would miss it (or count the helper)."""
    out = []
    for meta in (home / "bottles").glob("*/metadata.json"):
        try:
            pids = json.loads(meta.read_text()).get("pids", {})
        except (OSError, ValueError):
            continue  # being written
        out += [int(pid) for name, pid in pids.items() if name != "launcher"]
    return out


@contextmanager
def mitmdump(tmp: Path, up: Upstream) -> Iterator[tuple[str, Path, int]]:
    """Bare mitmdump (no addons; same upstream trust, lazy connections, bodies streamed
    as ours are): yields (proxy address, CA the client trusts, pid)."""
    from bot_bottle.sidecars.egress.trust import write_upstream_bundle

    conf = tmp / "mitm"
    conf.mkdir()
    bundle = write_upstream_bundle(conf, str(up.ca))
    port = _free_port()
    exe = shutil.which("mitmdump", path=os.path.dirname(sys.executable)) or "mitmdump"
    p = subprocess.Popen([exe, "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
                          "--set", f"confdir={conf}",
                          "--set", f"ssl_verify_upstream_trusted_ca={bundle}",
                          "--set", "connection_strategy=lazy",
                          "--set", "stream_large_bodies=1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mitmdump did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}", conf / "mitmproxy-ca-cert.pem", p.pid
    finally:
        p.terminate()
        p.wait(10)


MANIFEST = """
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/loadgen.py \\"$LOADGEN\\" > /workspace/out.json"]
    egress:
      hosts: {{{host}: 127.0.0.1}}
      upstream_ca: {ca}
      ssrf_ip_allowlist: [127.0.0.1/32]
      routes:
        - host: {host}
          port: {port}
    env:
      LOADGEN: '{cfg}'
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  load: {{bottle: b}}
"""


def in_bottle(tmp: Path, cfg: dict[str, Any], up: Upstream, backend: str = "namespace",
              sampler: Callable[[Callable[[], list[int]]], Any] = RssSampler,
              ) -> tuple[dict[str, Any], Any]:  # fmt: skip
    """Run loadgen.py inside a real bottle (`bot-bottle run -y`), sampling the bottle's
    sidecars on the host (`sampler(find_pids)`, RSS by default). The CA is the bottle's
    own ($SSL_CERT_FILE)."""
    tmp.mkdir()
    ws = tmp / "ws"
    ws.mkdir()
    shutil.copy(HERE / "loadgen.py", ws / "loadgen.py")
    if os.geteuid() == 0:  # a root launcher refuses a root-owned workspace: hand it over
        for p in (ws, ws / "loadgen.py"):
            os.chown(p, 1000, 1000)
    full = {**cfg, "host": HOST, "port": up.port, "ca": None}
    (tmp / "bot-bottle.yaml").write_text(MANIFEST.format(
        host=HOST, port=up.port, ca=up.ca, cfg=json.dumps(full), backend=backend))  # fmt: skip
    home = tmp / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
           "BOT_BOTTLE_HOME": str(home), "LANG": "C.UTF-8"}  # fmt: skip
    # The operator approves the configuration first (`run -y` refuses it otherwise).
    subprocess.run([sys.executable, "-m", "bot_bottle", "trust", "--yes"], env=env, cwd=tmp,
                   capture_output=True, check=True)  # fmt: skip
    with sampler(lambda: sidecar_pids(home)) as rss:
        r = subprocess.run([sys.executable, "-m", "bot_bottle", "run", "load", "-y"], env=env,
                           cwd=tmp, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           check=False)  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"bot-bottle run failed ({r.returncode}):\n{r.stderr[-2000:]}")
    out: dict[str, Any] = json.loads((ws / "out.json").read_text())
    return out, rss
