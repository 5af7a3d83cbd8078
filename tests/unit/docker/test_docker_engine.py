"""One function maps engine errors to typed errors; attach's argv leaks no host env."""

from __future__ import annotations

from pathlib import Path

import docker.errors as de
import pytest
import requests
from fakes.executor import RecordingExecutor

from bot_bottle.backends.docker.backend import DockerBackend
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.docker_engine import engine_errors, map_error
from bot_bottle.errors import BackendUnavailable, ManifestError, StateError


def api_error(status: int, text: str) -> de.APIError:
    r = requests.Response()
    r.status_code = status
    return de.APIError(text, response=r, explanation=text)


@pytest.mark.parametrize(("exc", "kind", "words"), [
    (de.ImageNotFound("no such image"), BackendUnavailable, "images build"),
    (de.NotFound("no such container"), StateError, "bot-bottle ls"),
    (api_error(409, "name in use"), StateError, "gc"),
    (api_error(500, "boom"), BackendUnavailable, "refused"),
    (api_error(400, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
     ManifestError, "resources.cpus: the Docker engine refused it"),
    (api_error(400, "Minimum memory limit allowed is 6MB"), ManifestError, "resources.memory"),
    (de.DockerException("Error while fetching server API version"), BackendUnavailable, "dockerd"),
    (requests.exceptions.ConnectionError("refused"), BackendUnavailable, "dockerd"),
])  # fmt: skip
def test_map_error(exc: Exception, kind: type, words: str) -> None:
    e = map_error(exc, "doing x")
    assert isinstance(e, kind)
    assert words in str(e) and "doing x" in str(e)


def test_engine_errors_reraises_typed_and_leaves_bugs_alone() -> None:
    with pytest.raises(StateError), engine_errors("x"):
        raise de.NotFound("gone")
    with pytest.raises(KeyError), engine_errors("x"):
        raise KeyError("a bug stays a bug")


def test_attach_execs_as_agent_with_only_docker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    ex = RecordingExecutor()
    spec = BottleSpec("s-1", Path("/state"), "none", "")
    assert DockerBackend(ex).attach(spec, ["claude", "-p", "hi"], tty=True) == 0
    cmd = ex.calls[0]
    assert cmd.argv[1:] == ("exec", "-i", "-t", "-u", "1000:1000", "-w", "/workspace",
                            "bb-s-1-agent", "claude", "-p", "hi")  # fmt: skip
    assert cmd.env is not None and "AWS_SECRET_ACCESS_KEY" not in cmd.env
    assert cmd.env["DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_probe_names_the_missing_sdk_not_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the engine running but the SDK absent, doctor must not say the engine is missing."""
    import builtins

    real_import = builtins.__import__

    def no_docker(name: str, *args: object, **kwargs: object) -> object:
        if name == "docker" or name.startswith("docker."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_docker)
    av = DockerBackend(RecordingExecutor()).probe()
    assert not av.ok
    assert av.missing == ["the Docker SDK for Python: pip install 'bot-bottle[docker]'"]
    assert not any("engine" in m for m in av.missing)
