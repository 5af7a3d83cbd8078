"""Backend `namespace`: bubblewrap sandboxes, daemonless, Linux only."""

from __future__ import annotations

from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.registry import register

register("namespace", NamespaceBackend)

__all__ = ["NamespaceBackend"]
