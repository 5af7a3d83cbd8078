"""`serve`: run mitmproxy in-process with the egress addon until told to stop.

All heavy imports (mitmproxy) happen when this module is imported; `serve` only
builds per-bottle state. A warm parent can import this module once and fork a
child per bottle that calls `serve`, skipping the ~0.7 s mitmproxy import.

Readiness is one line on stdout, `READY <listen-address>`, printed once the
listener accepts connections; launchers wait on it, never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster

from bot_bottle.errors import BotBottleError
from bot_bottle.sidecars import lifeline
from bot_bottle.sidecars.egress import layers
from bot_bottle.sidecars.egress.addon import EgressAddon
from bot_bottle.sidecars.egress.audit import AuditWriter
from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.grant_audit import GrantAudit
from bot_bottle.sidecars.egress.guard import ConnectionGuard
from bot_bottle.sidecars.egress.relay import HandoffAdmission, start_unix_relay, widen_backlog
from bot_bottle.sidecars.egress.routes_file import ReloadListener, RoutesFile
from bot_bottle.sidecars.egress.supervise import SuperviseEndpoint
from bot_bottle.sidecars.egress.trust import (
    AGENT_CA_FILE,
    ensure_agent_ca,
    write_upstream_bundle,
)
from bot_bottle.state.requests import RequestDir


@dataclass(frozen=True)
class Listen:
    """Where the agent reaches the proxy: TCP `host:port`, or a Unix socket path."""

    host: str
    port: int
    unix: Path | None = None

    @classmethod
    def parse(cls, spec: str) -> Listen:
        if spec.startswith("unix:"):
            if not spec[5:]:
                raise ValueError("--listen unix: needs a path")
            return cls("127.0.0.1", 0, Path(spec[5:]))
        host, sep, port = spec.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--listen {spec!r}: expected HOST:PORT or unix:PATH")
        return cls(host.strip("[]") or "127.0.0.1", int(port))


class Ready:
    """Prints the READY line once mitmproxy listens (and the Unix socket, if any, is up)."""

    def __init__(self, listen: Listen) -> None:
        self.listen = listen
        self.relay: asyncio.AbstractServer | None = None

    async def running(self) -> None:
        from mitmproxy import ctx

        master: Any = ctx.master
        proxyserver = master.addons.get("proxyserver")
        addrs = proxyserver.listen_addrs()
        if not addrs:
            print("egress: proxy did not start listening", file=sys.stderr, flush=True)
            master.shutdown()
            return
        host, port = addrs[0][0], addrs[0][1]
        instances = list(proxyserver.servers)
        for instance in instances:
            widen_backlog(getattr(instance, "_servers", []))
        if self.listen.unix is not None:
            self.relay = await start_unix_relay(
                self.listen.unix, instances[0].handle_stream, (host, port)
            )
            where = f"unix:{self.listen.unix}"
        else:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        print(f"READY {where}", flush=True)

    def done(self) -> None:
        if self.relay is not None:
            self.relay.close()
            if self.listen.unix is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.listen.unix.unlink()


class RoutesTicker:
    """Checks the routes file twice a second even when no request comes: a grant goes
    live, and a granted route expires, on time and on record (`grant_audit`), not at
    the agent's next request."""

    def __init__(self, routes: RoutesFile) -> None:
        self.routes = routes
        self._task: asyncio.Task[None] | None = None

    async def running(self) -> None:
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.routes.interval)
            try:
                self.routes.current()
            except Exception as e:  # never let the ticker die silently
                print(f"egress: routes check failed ({e})", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _stderr_reload(audit: AuditWriter | None) -> ReloadListener:
    def on_reload(ok: bool, message: str) -> None:
        print(f"egress: {message}", file=sys.stderr, flush=True)
        if audit is not None:
            audit.write(
                {
                    "kind": "reload",
                    "rule": "reload",
                    "decision": "allow" if ok else "deny",
                    "reason": message,
                }
            )

    return on_reload


def make_master(listen: Listen, confdir: Path, upstream_bundle: Path) -> Any:
    """A mitmproxy DumpMaster with the default addons and the sidecar's options, and no
    console output. Needs a running event loop."""
    opts = options.Options(
        listen_host=listen.host,
        listen_port=listen.port,
        confdir=str(confdir),
        ssl_verify_upstream_trusted_ca=str(upstream_bundle),
    )
    master: Any = DumpMaster(opts, with_termlog=False, with_dumper=False)
    # Options below belong to default addons, so they exist only once those are loaded.
    master.options.update(
        # Dial upstream only after the request passed every check.
        connection_strategy="lazy",
        http2=True,
        websocket=True,
        # Protocols bot-bottle does not inspect stay off: raw TCP (also what a non-WebSocket
        # `101 Switching Protocols` would become) and QUIC/HTTP/3. The addon's next_layer
        # refuses whatever else mitmproxy would pick (DNS on ports 53/5353, plaintext in a
        # tunnel), since no option turns those off.
        rawtcp=False,
        http3=False,
    )
    layers.install()
    return master


async def _run(
    listen: Listen, confdir: Path, bundle: Path, addon: EgressAddon, guard: ConnectionGuard,
    env: Mapping[str, str],
) -> int:  # fmt: skip
    master: Any = make_master(listen, confdir, bundle)
    master.addons.add(addon, guard, Ready(listen), RoutesTicker(addon.routes))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    lifeline.follow(env)  # its SIGTERM is the clean stop above
    await master.run()
    return 0


def warm_up() -> None:
    """Do once, in a throwaway directory, what each sidecar start does for the first time
    in a process: build a master (mitmproxy's addons, options and commands), a CA, the
    upstream bundle, a DLP scanner. A zygote calls it before forking, so its children
    find those first-time costs (lazy imports, caches, cryptography's and Hyperscan's
    setup) paid. Leaves no thread, event loop or file behind: it is safe to fork after."""
    import shutil
    import tempfile

    from bot_bottle.policy.dlp import Scanner

    tmp = Path(tempfile.mkdtemp(prefix="bb-egress-warm-"))
    try:
        conf = tmp / "conf"
        conf.mkdir(mode=0o700)
        bundle = write_upstream_bundle(conf, "")
        ensure_agent_ca(conf)
        Scanner(canaries=("bb-warm-up-canary-0000",)).first(b"warm")

        async def build() -> None:
            make_master(Listen("127.0.0.1", 0), conf, bundle)

        asyncio.run(build())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def serve(
    policy_path: Path | str,
    listen: str,
    audit_log: Path | str | None,
    confdir: Path | str | None,
    env: Mapping[str, str],
) -> int:
    """Serve one bottle's egress until SIGTERM; returns the exit code.

    Credentials come only from `env` (`EGRESS_TOKEN_<n>`, `EGRESS_PROTECT_<n>`).
    The agent must trust `<confdir>/mitmproxy-ca-cert.pem`.
    """
    policy_path = Path(policy_path)
    conf = Path(confdir) if confdir else policy_path.parent / "egress-conf"
    try:
        where = Listen.parse(listen)
        conf.mkdir(parents=True, exist_ok=True, mode=0o700)
        creds = Credentials.from_env(env)
        routes = RoutesFile(policy_path, creds)
        policy = routes.current().policy
        audit = AuditWriter(audit_log, policy.bottle) if audit_log else None
        routes.on_reload = _stderr_reload(audit)
        bundle = write_upstream_bundle(conf, policy.upstream_ca)
        ensure_agent_ca(conf)
    except (ValueError, OSError, BotBottleError) as e:
        msg = e.message if isinstance(e, BotBottleError) else str(e)
        print(f"egress: cannot start: {msg}", file=sys.stderr, flush=True)
        return 2
    try:
        admission = HandoffAdmission() if where.unix is not None else None
        asks = RequestDir(policy_path.parent / "requests", policy.bottle)
        if audit is not None:
            grants = GrantAudit(asks, audit.write)
            grants.changed((), routes.current().policy.routes)  # a restarted sidecar's grants
            routes.on_routes = grants.changed
        supervise = SuperviseEndpoint(asks, on_granted=routes.reload_now)
        addon = EgressAddon(routes, audit, supervise=supervise)
        guard = ConnectionGuard(addon.deny_connection, admission)
        return asyncio.run(_run(where, conf, bundle, addon, guard, env))
    finally:
        if audit is not None:
            audit.close()


__all__ = ["AGENT_CA_FILE", "Listen", "serve"]
