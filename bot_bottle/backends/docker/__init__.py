"""The docker backend (id `docker`): one container per bottle, with no network; the
in-bottle forwarder reaches the host sidecars' sockets. Registering imports nothing
heavy; the SDK loads on use."""

from __future__ import annotations

from bot_bottle.backends.registry import Backend, register
from bot_bottle.executor import Executor


def _factory(executor: Executor) -> Backend:
    from bot_bottle.backends.docker.backend import DockerBackend

    return DockerBackend(executor)


register("docker", _factory)
