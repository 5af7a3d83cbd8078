"""Repair a running bottle whose sidecar died: start its sidecars again, in place.

A dead egress leaves the agent with no network (fail closed) and `ls` says `degraded`,
while the agent itself runs on. `bot-bottle resume SLUG` on such a bottle comes here:
its sidecars start anew on the same sockets (the in-bottle forwarder dials the socket
for each connection, so the agent's next connection reaches the new egress) with the
same CA (the egress keeps its confdir), under the plan the operator approved. The
launcher, which still runs, stops them when the bottle ends (it stops the sidecars the
metadata records, not only those it started).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bot_bottle.backends import registry
from bot_bottle.errors import StateError
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.launch import (
    Bottle,
    bottle_spec,
    start_sidecars,
    status_of,
    stop_leftover_sidecars,
)
from bot_bottle.plan.model import BottlePlan
from bot_bottle.sidecars.process import SidecarHandle
from bot_bottle.state.process_identity import running
from bot_bottle.state.store import BottleMetadata, StateStore


def dead_sidecars(meta: BottleMetadata) -> list[str]:
    """The sidecars of a running bottle that are no longer alive."""
    return [n for n, pid in meta.pids.items()
            if n != "launcher" and not running(pid, meta.started.get(n))]  # fmt: skip


def restart_hint(slug: str) -> str:
    return f"`bot-bottle resume {slug}` restarts its sidecars (the agent keeps running)"


def restart_sidecars(
    plan: BottlePlan,
    meta: BottleMetadata,
    store: StateStore,
    host_env: Mapping[str, str],
    executor: Executor | None = None,
) -> list[SidecarHandle]:
    """Stop what is left of `meta`'s sidecars and start them all again; record them."""
    from bot_bottle.plan.materialize import materialize

    executor = executor or ProcessExecutor()
    inputs = materialize(plan, host_env)  # before anything stops: a bad input stops nothing
    with store.lock(f"restart-{meta.slug}"):
        meta = store.load(meta.slug)
        if status_of(meta) != "degraded":
            raise StateError(f"bottle {meta.slug} is {status_of(meta)}, not degraded",
                             "`bot-bottle ls` shows which bottles need a restart")  # fmt: skip
        sd = store.dir(meta.slug)
        spec = bottle_spec(plan, meta, sd, inputs.agent_env, store, bool(plan.git_remotes))
        # The backend gave the sockets to whoever dials them in the bottle (the agent's
        # user, under a root launcher): the new ones go to the same owners.
        owners = {link.socket: _owner(link.socket) for link in spec.sidecars}
        stop_leftover_sidecars(store, meta)  # the survivors too: they restart together
        bottle = Bottle(meta, spec, registry.get(meta.backend, executor))
        start_sidecars(bottle, plan, inputs, store, executor)
        for sock, owner in owners.items():
            if owner is not None and sock.exists():
                os.chown(sock, *owner, follow_symlinks=False)
        store.update(meta.slug, pids={"launcher": meta.pids["launcher"],
                                      **{s.name: s.pid for s in bottle.sidecars}})  # fmt: skip
    return bottle.sidecars


def _owner(path: Path) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_uid, st.st_gid
