"""Shared setup for addon tests on fabricated mitmproxy flows (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot_bottle.sidecars.egress.addon import EgressAddon
from bot_bottle.sidecars.egress.audit import AuditWriter
from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.guard import ConnectionGuard
from bot_bottle.sidecars.egress.routes_file import RoutesFile

SECRET = "sk-fake-SECRET-unit-0123456789"
CANARY = "AKIAFAKECANARY0000009"

DOC: dict[str, Any] = {
    "version": 1,
    "bottle": "unit",
    "routes": [
        {
            "host": "api.example.test",
            "paths": ["/v1"],
            "methods": ["GET", "POST"],
            "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"},
        },
        {"host": "basic.example.test", "auth": {"scheme": "Basic", "slot": "EGRESS_TOKEN_1"}},
        {"host": "pass.example.test", "tls_passthrough": True},
        {"host": "open.example.test"},
        {"host": "nxdomain.example.test"},
    ],
    "hosts": {
        "api.example.test": "93.184.216.10",
        "basic.example.test": "93.184.216.11",
        "open.example.test": "10.0.0.5",
        "pass.example.test": "93.184.216.12",
    },
    "ssrf_ip_allowlist": [],
    "dlp": {"enabled": True, "canaries": [CANARY], "patterns": [r"ghp_[A-Za-z0-9]{36}"]},
}


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"unit tests must not resolve {host}")


class Env:
    def __init__(self, tmp: Path) -> None:
        self.routes_path = tmp / "routes.json"
        self.routes_path.write_text(json.dumps(DOC))
        self.audit_path = tmp / "audit.jsonl"
        creds = Credentials.from_env({"EGRESS_TOKEN_0": SECRET, "EGRESS_TOKEN_1": "u:p"})
        self.routes = RoutesFile(self.routes_path, creds, interval=0)
        self.writer = AuditWriter(self.audit_path, "unit")
        self.addon = EgressAddon(self.routes, self.writer, resolve=no_dns)
        self.guard = ConnectionGuard(self.addon.deny_connection)

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.audit_path.read_text().splitlines()]
