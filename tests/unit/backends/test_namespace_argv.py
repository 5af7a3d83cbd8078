"""The bwrap command line a namespace bottle runs, recorded rather than executed."""

from __future__ import annotations

from pathlib import Path

from fakes.executor import RecordingExecutor

from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.spec import Availability, BottleSpec, SidecarLink, ToolMount


def _spec(tmp_path: Path, **kw: object) -> BottleSpec:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    base: dict[str, object] = dict(
        slug="claude-moss-ab12",
        state_dir=tmp_path / "state",
        workspace_mode="mount",
        workspace_path=str(ws),
        env={"CLAUDE_CODE_OAUTH_TOKEN": "egress-placeholder"},
        sidecars=(SidecarLink("egress", tmp_path / "state" / "sockets" / "egress.sock", 3128),),
        tools=(ToolMount(tmp_path / "agents", "/opt/bot-bottle/agents", "bin"),),
    )
    base.update(kw)
    return BottleSpec(**base)  # type: ignore[arg-type]


def _attach(tmp_path: Path, **kw: object) -> tuple[list[str], dict[str, str]]:
    rec = RecordingExecutor()
    be = NamespaceBackend(rec, bwrap="bwrap")
    be.require = lambda: None  # type: ignore[method-assign]
    spec = _spec(tmp_path, **kw)
    be.prepare(spec)
    assert be.attach(spec, ["claude", "-p", "hi"]) == 0
    cmd = rec.calls[-1]
    assert cmd.env is not None
    argv = [cmd.fd_files.get(a.removeprefix("@fd:"), a) for a in cmd.argv]
    return argv, dict(cmd.env)


def test_every_namespace_is_new_and_caps_dropped(tmp_path: Path) -> None:
    argv, _ = _attach(tmp_path)
    for flag in (
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup",
        "--unshare-net",
        "--die-with-parent",
    ):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    filters = [argv[i + 1] for i, a in enumerate(argv) if a == "--add-seccomp-fd"]
    assert filters == [str(tmp_path / "state" / f) for f in ("seccomp.bpf", "file-modes.bpf")]
    assert "--share-net" not in argv


def test_only_named_etc_files_and_no_host_home(tmp_path: Path) -> None:
    argv, _ = _attach(tmp_path)
    binds = ("--bind", "--ro-bind", "--ro-bind-try")
    sources = [argv[i + 1] for i, a in enumerate(argv) if a in binds]
    assert "/etc" not in sources and "/" not in sources
    hidden = ("/etc/shadow", "/etc/ssl/private", "/root", "/home")
    assert not any(s.startswith(hidden) for s in sources)
    assert str(Path.home()) not in sources


def test_workspace_rw_and_cwd(tmp_path: Path) -> None:
    argv, _ = _attach(tmp_path)
    i = argv.index("/workspace")
    assert argv[i - 2] == "--bind" and argv[i - 1] == str(tmp_path / "ws")
    assert argv[argv.index("--chdir") + 1] == "/workspace"


def test_copy_mode_binds_the_copy(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "f").write_text("x")
    argv, _ = _attach(tmp_path, workspace_mode="copy")
    assert argv[argv.index("/workspace") - 1] == str(tmp_path / "state" / "workspace")
    assert (tmp_path / "state" / "workspace" / "f").read_text() == "x"


def test_forwarder_fronts_the_agent(tmp_path: Path) -> None:
    argv, _ = _attach(tmp_path)
    tail = argv[argv.index("--") :]
    assert tail[1:5] == ["/usr/bin/python3", "-I", "-S", "/run/bot-bottle-init/forwarder.py"]
    assert tail[5] == "3128=/run/bot-bottle/egress.sock"
    assert tail[-4:] == ["--", "claude", "-p", "hi"]


def test_env_is_complete_and_not_inherited(tmp_path: Path, monkeypatch: object) -> None:
    import os

    os.environ["BB_HOST_SECRET_PROBE"] = "x"
    try:
        _, env = _attach(tmp_path)
    finally:
        del os.environ["BB_HOST_SECRET_PROBE"]
    assert "BB_HOST_SECRET_PROBE" not in env
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert env["NODE_EXTRA_CA_CERTS"] == "/home/agent/.bot-bottle/ca-bundle.pem"
    assert env["CODEX_CA_CERTIFICATE"] == env["SSL_CERT_FILE"]
    assert env["PATH"].startswith("/opt/bot-bottle/agents/bin:")
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == "egress-placeholder"
    assert env["HOME"] == "/home/agent"


def test_put_file_refuses_escapes(tmp_path: Path) -> None:
    import pytest

    be = NamespaceBackend(RecordingExecutor(), bwrap="bwrap")
    t = be.prepare(_spec(tmp_path))
    t.put_file("~/.codex/auth.json", b"{}", 0o600)
    assert (tmp_path / "state" / "home" / ".codex" / "auth.json").read_bytes() == b"{}"
    for bad in ("~/../../etc/x", "/etc/passwd", "/workspace/../x"):
        with pytest.raises(ValueError):
            t.put_file(bad, b"")


def test_bwrap_is_probed_once_per_launch(tmp_path: Path) -> None:
    """`run` chooses the backend by probing it, then launch and attach check again: the
    bwrap test run is paid once, not on every check of the start-up path."""
    be = NamespaceBackend(RecordingExecutor(), bwrap="bwrap")
    probes: list[int] = []

    def fake_probe() -> Availability:
        probes.append(1)
        return Availability(True, "ok")

    be._probe = fake_probe  # type: ignore[method-assign]
    spec = _spec(tmp_path)
    assert be.probe().ok
    be.prepare(spec)
    be.launch(spec)
    assert be.attach(spec, ["true"]) == 0
    assert probes == [1]


def test_files_the_launch_read_are_bound_read_only_after_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "a" / "b").mkdir(parents=True)
    manifest, prompt = ws / "bot-bottle.yaml", ws / "a" / "b" / "p.md"
    argv, _ = _attach(tmp_path, read_only=(str(prompt), str(manifest), str(tmp_path / "out")))
    start = argv.index("/workspace")  # the workspace bind's destination
    binds = argv[start + 3 : start + 3 + 12]  # after `--chdir /workspace`
    assert binds == [
        "--bind", str(ws / "a"), "/workspace/a",
        "--ro-bind", str(manifest), "/workspace/bot-bottle.yaml",
        "--bind", str(ws / "a" / "b"), "/workspace/a/b",
        "--ro-bind", str(prompt), "/workspace/a/b/p.md",
    ]  # fmt: skip
    assert str(tmp_path / "out") not in argv


def test_attach_hands_the_forwarder_a_host_only_exec_socket(tmp_path: Path) -> None:
    """`bot-bottle exec`'s listener: bound in the state dir (never bound into the
    bottle), handed to the in-bottle forwarder by descriptor, gone when attach ends."""
    import socket

    rec = RecordingExecutor()
    be = NamespaceBackend(rec, bwrap="bwrap")
    be.require = lambda: None  # type: ignore[method-assign]
    spec = _spec(tmp_path)
    be.prepare(spec)
    be.attach(spec, ["claude"])
    cmd = rec.calls[-1]
    argv = list(cmd.argv)
    forwarder = len(argv) - 1 - argv[::-1].index("/run/bot-bottle-init/forwarder.py")
    assert argv[forwarder + 1 :][:4] == ["3128=/run/bot-bottle/egress.sock", "exec", "@fd:exec",
                                         "--"]  # fmt: skip
    with socket.socket(fileno=cmd.hand_fds["exec"]) as s:
        assert s.family == socket.AF_UNIX
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        # Bound through the state dir's fd (/proc/self/fd/N/exec.sock): deep paths fit.
        assert s.getsockname().startswith("/proc/self/fd/")
        assert s.getsockname().endswith("/exec.sock")
    assert not (tmp_path / "state" / "exec.sock").exists()
    # One-shot provisioning sandboxes get no exec socket.
    be.run(spec, ["true"])
    assert "exec" not in rec.calls[-1].argv and not rec.calls[-1].hand_fds
