"""Sandbox runtimes, registered by stable id. See `base.py` for the protocol."""

from __future__ import annotations

from bot_bottle.backends.base import (
    REGISTRY,
    Availability,
    Backend,
    BottleSpec,
    Cmd,
    Executor,
    ProcessExecutor,
    RecordingExecutor,
    SidecarLink,
    ToolMount,
    get,
    network_env,
    probe_all,
    register,
)

__all__ = [
    "REGISTRY",
    "Availability",
    "Backend",
    "BottleSpec",
    "Cmd",
    "Executor",
    "ProcessExecutor",
    "RecordingExecutor",
    "SidecarLink",
    "ToolMount",
    "get",
    "network_env",
    "probe_all",
    "register",
]
