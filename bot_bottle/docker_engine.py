"""The Docker Engine connection and the one place its errors become typed bot-bottle errors.

Callers wrap engine calls in `engine_errors("what we were doing")` and never parse
error strings themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot_bottle.errors import BackendUnavailable, BotBottleError, ManifestError, StateError

if TYPE_CHECKING:
    import docker

START_FIX = "start the engine (`dockerd &`, or `.ci/docker-setup.sh`) and check `docker info`"


# Engine refusals of a value the manifest gave: reported against that field.
FIELD_REFUSALS = (
    ("Range of CPUs", "resources.cpus",
     "lower `resources.cpus` to at most the engine's CPUs (`docker info`), or remove it"),
    ("NanoCPUs", "resources.cpus",
     "this engine cannot limit CPUs; remove `resources.cpus` or use another backend"),
    ("Minimum memory limit", "resources.memory", "raise `resources.memory` to at least 6m"),
    ("memory limit", "resources.memory",
     "change or remove `resources.memory` (the engine's message says why)"),
)  # fmt: skip


def map_error(e: Exception, action: str) -> BotBottleError:
    """A Docker SDK or connection error as the typed error a user can act on."""
    import docker.errors as de
    import requests.exceptions as rq

    if isinstance(e, BotBottleError):
        return e
    if isinstance(e, de.ImageNotFound):
        return BackendUnavailable(
            f"{action}: image not found ({_explain(e)})",
            "`bot-bottle images build` (after `bot-bottle images bootstrap` on hosts "
            "without a registry)",
        )
    if isinstance(e, de.NotFound):
        return StateError(f"{action}: {_explain(e)}", "see `bot-bottle ls`; `bot-bottle gc`")
    if isinstance(e, de.APIError) and e.status_code == 409:
        return StateError(f"{action}: conflict: {_explain(e)}", "`bot-bottle gc` removes leftovers")
    if isinstance(e, de.BuildError):
        tail = "".join(str(c.get("stream", c.get("error", ""))) for c in list(e.build_log)[-8:])
        return BackendUnavailable(
            f"{action}: build failed: {e.msg}\n{tail.rstrip()}",
            "fix the Dockerfile or pass --ca-bundle if a fetch failed on TLS",
        )
    if isinstance(e, de.APIError):
        for needle, path, fix in FIELD_REFUSALS:
            if needle in _explain(e):
                return ManifestError(f"the Docker engine refused it ({action}): {_explain(e)}",
                                     path, fix)  # fmt: skip
        return BackendUnavailable(f"{action}: the Docker engine refused: {_explain(e)}", "")
    if isinstance(e, (de.DockerException, rq.ConnectionError, ConnectionError, FileNotFoundError)):
        return BackendUnavailable(f"{action}: cannot reach the Docker engine ({e})", START_FIX)
    return BackendUnavailable(f"{action}: {type(e).__name__}: {e}", "")


def _explain(e: Exception) -> str:
    explanation = getattr(e, "explanation", None)
    return str(explanation or e)


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Re-raise anything the engine throws inside as a typed error naming `action`."""
    try:
        yield
    except BotBottleError:
        raise
    except Exception as e:
        import docker.errors as de
        import requests.exceptions as rq

        if isinstance(e, (de.DockerException, rq.RequestException, ConnectionError, OSError)):
            raise map_error(e, action) from e
        raise


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the local engine (`DOCKER_HOST` or /var/run/docker.sock), pinged."""
    try:
        import docker
    except ModuleNotFoundError:
        raise BackendUnavailable(
            "the docker backend needs the Docker SDK for Python",
            "pip install 'bot-bottle[docker]'",
        ) from None
    with engine_errors("connecting to Docker"):
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
