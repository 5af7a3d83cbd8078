"""Backend `namespace`: bubblewrap sandboxes, daemonless, Linux only."""

from __future__ import annotations

from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.registry import register
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.state.store import home_dir


def _namespace(executor: Executor) -> NamespaceBackend:
    """Real sandboxes keep the probe's success (`verdict.py`); a test's recording
    executor probes every time."""
    real = isinstance(executor, ProcessExecutor)
    verdicts = home_dir() / "cache" / "namespace-probe.json" if real else None
    return NamespaceBackend(executor, verdicts=verdicts)


register("namespace", _namespace)

__all__ = ["NamespaceBackend"]
