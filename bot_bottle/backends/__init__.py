"""Sandbox runtimes, registered by stable id. See `registry.py` for the protocol."""

from __future__ import annotations

from bot_bottle.backends.registry import REGISTRY, Backend, get, probe_all, register
from bot_bottle.backends.spec import Availability, BottleSpec, SidecarLink, ToolMount
from bot_bottle.executor import Cmd, Executor, ProcessExecutor

__all__ = [
    "REGISTRY",
    "Availability",
    "Backend",
    "BottleSpec",
    "Cmd",
    "Executor",
    "ProcessExecutor",
    "SidecarLink",
    "ToolMount",
    "get",
    "probe_all",
    "register",
]
