"""What starting one bottle's egress sidecar takes, cold or through the zygote."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecars import lifeline


def ca_cert(confdir: Path) -> Path:
    """The egress CA certificate the bottle trusts: mitmproxy writes it in its confdir."""
    return confdir / "mitmproxy-ca-cert.pem"


@dataclass(frozen=True)
class EgressRequest:
    """One bottle's egress sidecar. `env` carries the credential slots: it is passed as
    the sidecar's environment and nowhere else (not logged, not written)."""

    routes: Path
    socket: Path
    audit_log: Path
    confdir: Path
    log: Path
    env: dict[str, str]
    launcher: str = ""  # the launcher to end with (`sidecars.lifeline.token`)

    def __repr__(self) -> str:
        return f"EgressRequest(socket={self.socket}, slots={sorted(self.env)})"

    def argv(self) -> tuple[str, ...]:
        return (
            sys.executable, "-m", "bot_bottle", "egress", "serve",
            "--routes", str(self.routes), "--listen", self.listen,
            "--audit-log", str(self.audit_log), "--confdir", str(self.confdir),
        )  # fmt: skip

    @property
    def listen(self) -> str:
        """Relative to the sidecar's cwd (the sockets dir): state dirs can be deep, and a
        Unix socket path is limited to 107 bytes."""
        return f"unix:{self.socket.name}"

    def process_env(self) -> dict[str, str]:
        base = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
        life = {lifeline.ENV: self.launcher} if self.launcher else {}
        return {**base, "HOME": str(self.confdir), **life, **self.env}
