"""Which OCI runtime bottles use: gVisor (`runsc`) when a real test shows it starts a
bottle-shaped container here (no network, a loopback listener), else runc. The verdict is cached per engine so a launch
never pays for the test; `bot-bottle doctor` (through `probe`) refreshes it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_bottle.state.store import home_dir

if TYPE_CHECKING:
    from docker import DockerClient

RUNSC = "runsc"
VERDICT_TTL = 600.0  # seconds; doctor after that tests again


@dataclass(frozen=True)
class RuntimeVerdict:
    engine: str  # engine id + version the verdict belongs to
    runsc_registered: bool
    runsc_works: bool
    detail: str
    tested_at: float = 0.0


def _cache_path() -> Path:
    return home_dir() / "docker-runtime.json"


def engine_key(info: dict[str, Any]) -> str:
    return (
        f"{info.get('ID', '')}/{info.get('ServerVersion', '')}/{sorted(info.get('Runtimes', {}))}"
    )


def test_runsc(client: DockerClient, image: str) -> RuntimeVerdict:
    """Start a container under runsc with no network, as bottles run, and have it listen
    on loopback as the forwarder does; anything short of exit 0 means gVisor is not
    usable here."""
    info = client.info()
    key = engine_key(info)
    if RUNSC not in info.get("Runtimes", {}):
        return RuntimeVerdict(key, False, False, "runsc is not registered with the engine")
    container = None
    try:
        container = client.containers.create(
            image, ["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0))"],
            runtime=RUNSC, network_mode="none", labels={"bot-bottle.role": "probe"},
        )  # fmt: skip
        container.start()
        code = container.wait(timeout=60).get("StatusCode", -1)
        if code == 0:
            return RuntimeVerdict(key, True, True, "gVisor (runsc) starts bottle containers")
        reason = f"exit {code}: {container.logs(tail=3).decode(errors='replace').strip()}"
    except Exception as e:
        reason = str(getattr(e, "explanation", None) or e).strip() or type(e).__name__
    finally:
        if container is not None:
            container.remove(force=True)
    return RuntimeVerdict(key, True, False, f"gVisor (runsc) is registered but failed: {reason}")


def save(v: RuntimeVerdict) -> None:
    v = replace(v, tested_at=time.time())
    p = _cache_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(asdict(v)) + "\n")


def cached(key: str, max_age: float | None = VERDICT_TTL) -> RuntimeVerdict | None:
    try:
        raw = json.loads(_cache_path().read_text())
        v = RuntimeVerdict(**raw)
    except (OSError, ValueError, TypeError):
        return None
    fresh = max_age is None or time.time() - v.tested_at < max_age
    return v if v.engine == key and fresh else None


def choose(info: dict[str, Any]) -> str | None:
    """The runtime for new bottles: `$BOT_BOTTLE_DOCKER_RUNTIME`, else runsc only when
    a cached real test on this engine passed, else the engine default (runc)."""
    forced = os.environ.get("BOT_BOTTLE_DOCKER_RUNTIME")
    if forced:
        return None if forced == "runc" else forced
    v = cached(engine_key(info), max_age=None)
    return RUNSC if v is not None and v.runsc_works else None
