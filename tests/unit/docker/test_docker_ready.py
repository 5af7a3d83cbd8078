"""`DockerBackend._start` over a fake container (no engine): the forwarder's ready line
on the attached output ends the wait; its exit before the line fails at once with the
log and the fix; the attached stream is closed whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import docker.errors as de
import pytest
import requests
from fakes.executor import RecordingExecutor

from bot_bottle.backends.docker.backend import DockerBackend
from bot_bottle.backends.docker.layout import READY
from bot_bottle.errors import BackendUnavailable


@dataclass
class Stream:
    chunks: list[bytes]
    closed: bool = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeContainer:
    output: list[bytes]
    log: bytes | None = b"python3: not found\n"  # None: removed meanwhile
    name: str = "bb-x-agent"
    short_id: str = "abc"
    calls: list[str] = field(default_factory=list)
    stream: Stream | None = None

    def attach(self, **kw: object) -> Stream:
        assert kw == {"stdout": True, "stderr": False, "stream": True, "logs": False}
        self.calls.append("attach")
        self.stream = Stream(self.output)
        return self.stream

    def start(self) -> None:
        self.calls.append("start")

    def logs(self, tail: int) -> bytes:
        if self.log is None:
            r = requests.Response()
            r.status_code = 409
            raise de.APIError("x", response=r, explanation="marked for removal")
        return self.log


def start(c: FakeContainer) -> None:
    DockerBackend(RecordingExecutor())._start(c)  # type: ignore[arg-type]


def test_the_ready_line_ends_the_wait() -> None:
    head, tail = READY.encode()[:9], READY.encode()[9:]
    c = FakeContainer([b"starting\n" + head, tail + b"\n"])  # the line split across reads
    start(c)
    assert c.calls == ["attach", "start"]  # attached first: no line is missed
    assert c.stream is not None and c.stream.closed


@pytest.mark.parametrize(("log", "shown"), [
    (b"python3: not found\n", "python3: not found"),
    (None, "(no log: marked for removal)"),
])  # fmt: skip
def test_an_exit_before_the_line_fails_with_the_log(log: bytes | None, shown: str) -> None:
    c = FakeContainer([b"something else\n"], log=log)
    with pytest.raises(BackendUnavailable) as e:
        start(c)
    assert e.value.message.startswith("bottle container bb-x-agent exited before it was ready")
    assert shown in e.value.message
    assert "docker logs bb-x-agent" in e.value.fix and "python3" in e.value.fix
    assert c.stream is not None and c.stream.closed
