"""The microvm backend (id `microvm`): QEMU `-M microvm` guests under their own kernel,
with no network device (see `backend.py`). Registering imports nothing heavy."""

from __future__ import annotations

from bot_bottle.backends.registry import Backend, register
from bot_bottle.executor import Executor


def _factory(executor: Executor) -> Backend:
    from bot_bottle.backends.microvm.backend import MicrovmBackend

    return MicrovmBackend(executor)


register("microvm", _factory)
