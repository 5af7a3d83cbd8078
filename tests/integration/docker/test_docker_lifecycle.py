"""Lifecycle on a real engine: resume restarts a kept bottle after its containers were
stopped behind bot-bottle's back; gc removes what a SIGKILLed launcher left, keeps
what was kept on purpose, and says what it removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import docker
import pytest
from docker_harness import FakeSidecar

from bot_bottle.backends.docker.gc import collect
from bot_bottle.backends.docker.layout import LABEL_SLUG
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.state.store import StateStore

pytestmark = [pytest.mark.docker, pytest.mark.integration]


def labelled(slug: str) -> list[str]:
    client = docker.from_env()
    flt = {"label": f"{LABEL_SLUG}={slug}"}
    return sorted(
        [c.name for c in client.containers.list(all=True, filters=flt)]
        + [n.name for n in client.networks.list(filters=flt)]
        + [v.name for v in client.volumes.list(filters=flt)]
    )


def test_resume_after_containers_were_stopped(
    backend: object, spec: BottleSpec, fake_egress: FakeSidecar
) -> None:
    target = backend.prepare(spec)  # type: ignore[attr-defined]
    target.put_file("~/notes.txt", b"kept in HOME\n")
    assert target.run(["sh", "-c", "echo edited >> hello.txt"]).returncode == 0
    backend.preserve(spec)  # type: ignore[attr-defined]
    client = docker.from_env()
    client.containers.get(f"bb-{spec.slug}-agent").stop(timeout=1)  # as a reboot would
    assert not backend.is_running(spec)  # type: ignore[attr-defined]

    fake_egress.close()  # the launcher starts fresh sidecars on resume, new sockets
    link = spec.sidecar("egress")
    assert link is not None
    link.socket.unlink()
    fresh = FakeSidecar(link.socket)
    try:
        target = backend.resume(spec)  # type: ignore[attr-defined]
        assert backend.is_running(spec)  # type: ignore[attr-defined]
        assert target.run(["cat", "/home/agent/notes.txt"]).stdout == "kept in HOME\n"
        assert target.run(["cat", "hello.txt"]).stdout.endswith("edited\n")
        r = target.run(["curl", "-s", "http://127.0.0.1:3128/"])
        assert r.stdout == "hello from egress" and fresh.connections == 1
    finally:
        fresh.close()
    backend.remove(spec)  # type: ignore[attr-defined]
    assert labelled(spec.slug) == []


LAUNCHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from bot_bottle.backends.spec import BottleSpec
    from bot_bottle.executor import ProcessExecutor
    from bot_bottle.backends.docker.backend import DockerBackend
    from bot_bottle.state.store import StateStore

    store = StateStore(Path(sys.argv[1]))
    meta = store.create(agent="t", bottle="b", backend="docker", manifest_path="m",
                        manifest_digest="d")
    store.update(meta.slug, pids={"launcher": os.getpid()}, status="running")
    spec = BottleSpec(meta.slug, store.dir(meta.slug), "none", "", image="general")
    backend = DockerBackend(ProcessExecutor())
    backend.prepare(spec)
    backend.launch(spec)
    print(meta.slug, flush=True)
    sys.stdin.read()
    """
)


def start_launcher(root: Path) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(root)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None
    slug = p.stdout.readline().strip()
    assert slug, "launcher died before its bottle was up"
    return p, slug


def test_gc_after_killed_launcher(docker_engine: None, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    live, live_slug = start_launcher(store.root)
    dead, dead_slug = start_launcher(store.root)
    kept, kept_slug = start_launcher(store.root)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        kept.send_signal(signal.SIGKILL)
        kept.wait()
        store.update(kept_slug, status="stopped", pids={})  # as `--keep` leaves it
        assert len(labelled(dead_slug)) == 3  # the container, 2 volumes; no network

        removed = collect(store=store)
        names = {(r.kind, r.name) for r in removed}
        assert ("state", dead_slug) in names
        assert ("container", f"bb-{dead_slug}-agent") in names
        assert ("volume", f"bb-{dead_slug}-home") in names
        assert all(live_slug not in n and kept_slug not in n for _, n in names), names
        assert labelled(dead_slug) == []
        assert not store.dir(dead_slug).exists()
        assert len(labelled(live_slug)) == 3 and len(labelled(kept_slug)) == 3

        # The CLI says what it removed (here: nothing left to remove).
        env = {**os.environ, "BOT_BOTTLE_HOME": str(store.root)}
        out = subprocess.run([sys.executable, "-m", "bot_bottle", "gc", "--json"], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert [r for r in json.loads(out.stdout) if r["kind"] != "note"] == []
    finally:
        for p in (live, dead, kept):
            p.kill()
            p.wait()
        client = docker.from_env()
        from bot_bottle.backends.docker.backend import remove_labelled

        for slug in (live_slug, dead_slug, kept_slug):
            remove_labelled(client, slug)


def test_gc_removes_objects_without_state(docker_engine: None, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    p, slug = start_launcher(store.root)
    p.kill()
    p.wait()
    import shutil

    shutil.rmtree(store.dir(slug))  # a crash before the state dir was written, say
    removed = collect(store=store)
    assert {r.reason for r in removed if slug in r.name} == {"no bottle state and no live launcher"}
    assert labelled(slug) == []


def test_resume_refuses_a_bottle_from_the_relay_era(backend: object, spec: BottleSpec) -> None:
    from bot_bottle.backends.docker.layout import labels
    from bot_bottle.errors import StateError
    from bot_bottle.images.build import BUNDLED, ensure

    client = docker.from_env()
    image, _ = ensure(BUNDLED["agent-general"], client=client)
    # Shaped as earlier versions made it: on a Docker network (never started here).
    client.containers.create(image, ["true"], name=f"bb-{spec.slug}-agent", network_mode="bridge",
                             labels=labels(spec.slug, "agent", spec.state_dir))  # fmt: skip
    with pytest.raises(StateError, match="earlier bot-bottle"):
        backend.resume(spec)  # type: ignore[attr-defined]


def test_a_bottle_whose_forwarder_cannot_start_fails_at_once(
    backend: object, spec: BottleSpec
) -> None:
    """The container's exit before its ready line ends the one READY wait (the attached
    output's EOF), with its log and the fix, instead of waiting out the timeout."""
    import time

    from bot_bottle.backends.docker.backend import READY_TIMEOUT
    from bot_bottle.errors import BackendUnavailable

    no_python = replace(spec, image="debian:bookworm-slim", workspace_mode="none")
    t0 = time.monotonic()
    target = backend.prepare(no_python)  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match="exited before it was ready") as e:
        target.ready()
    assert time.monotonic() - t0 < READY_TIMEOUT / 2
    assert "python3" in e.value.fix and "docker logs" in e.value.fix
    backend.remove(no_python)  # type: ignore[attr-defined]
    assert labelled(spec.slug) == []
