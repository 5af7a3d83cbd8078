"""Backend `namespace`: bubblewrap sandboxes, daemonless, Linux only."""

from __future__ import annotations

from bot_bottle.backends.base import register
from bot_bottle.backends.namespace.backend import NamespaceBackend

register("namespace", NamespaceBackend)

__all__ = ["NamespaceBackend"]
