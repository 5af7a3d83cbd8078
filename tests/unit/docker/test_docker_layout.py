"""The Docker bottle's shape as values: the container hardened, on no network, limits
from the plan, sockets mounted read-only behind the in-bottle forwarder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.backends import host_user
from bot_bottle.backends.docker import layout, lifeline, seccomp
from bot_bottle.backends.spec import BottleSpec, SidecarLink, ToolMount
from bot_bottle.errors import UnsafeWorkspace


def spec(**kw: object) -> BottleSpec:
    base: dict[str, object] = {
        "slug": "dev-amber-1a2b", "state_dir": Path("/state/dev-amber-1a2b"),
        "workspace_mode": "copy", "workspace_path": "/src",
        "env": {"FOO": "bar"},
        "sidecars": (SidecarLink("egress", Path("/state/sockets/egress.sock"), 3128),),
    }  # fmt: skip
    base.update(kw)
    return BottleSpec(**base)  # type: ignore[arg-type]


def test_container_is_hardened() -> None:
    kw = layout.agent_config(spec(), "agent:1", runtime=None, launcher_pid=7).create_kwargs()
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"][0] == "no-new-privileges"
    assert kw["security_opt"][1] == seccomp.security_opt()
    assert kw["read_only"] is True
    assert "/tmp" in kw["tmpfs"]
    assert kw["pids_limit"] > 0
    assert "privileged" not in kw
    assert kw["labels"][layout.LABEL_SLUG] == "dev-amber-1a2b"
    assert kw["labels"][layout.LABEL_LAUNCHER] == "7"


def test_no_network_and_the_forwarder_as_main_process() -> None:
    import os

    cfg = layout.agent_config(spec(), "agent:1", runtime="runsc", launcher_pid=1)
    kw = cfg.create_kwargs()
    assert kw["network_mode"] == "none"
    assert "network" not in kw and "networking_config" not in kw
    assert kw["runtime"] == "runsc"
    # The forwarder reaches the sockets as their owner; the agent runs as 1000 by exec.
    assert kw["user"] == f"{os.getuid()}:{os.getgid()}"
    assert layout.agent_user(spec()) == "1000:1000"
    sockets = [m for m in cfg.mounts if m.source == "/state/sockets"]
    assert sockets == [layout.Mount("/run/bot-bottle/egress", "/state/sockets", "bind", True)]
    forwarder = [m for m in cfg.mounts if m.target == layout.FORWARDER_INSIDE]
    assert forwarder and forwarder[0].read_only and forwarder[0].source.endswith("forwarder.py")
    sep = cfg.command.index("--")
    assert cfg.command[:sep] == ("/usr/bin/env", f"PATH={layout.DEFAULT_PATH}", "python3",
                                 "-I", "-S", layout.FORWARDER_INSIDE,
                                 "3128=/run/bot-bottle/egress/egress.sock")  # fmt: skip


def test_forwarder_ignores_a_path_the_agent_writes() -> None:
    # It runs as the sockets' owner: a PATH from the manifest naming the workspace must
    # not pick the agent's planted `python3` or `sleep` (say on `resume`).
    cfg = layout.agent_config(spec(env={"PATH": "/workspace/bin:/usr/bin"}), "a",
                              runtime=None, launcher_pid=1)  # fmt: skip
    assert cfg.environment["PATH"].startswith("/workspace/bin")  # the agent's own PATH
    assert cfg.command[0] == "/usr/bin/env"
    assert cfg.command[1] == f"PATH={layout.DEFAULT_PATH}" and "/workspace" not in cfg.command[1]
    main = cfg.command[cfg.command.index("--") + 1 :]
    assert main[:3] == ("python3", "-I", "-S") and layout.READY in main


def test_main_process_holds_the_launchers_lifeline() -> None:
    # It exits, stopping the container and all the agent started, when the launcher dies.
    cfg = layout.agent_config(spec(), "a", runtime=None, launcher_pid=1)
    main = cfg.command[cfg.command.index("--") + 1 :]
    assert main == ("python3", "-I", "-S", "-c", lifeline.HOLD,
                    "/run/bot-bottle/egress/launcher.sock", layout.READY)  # fmt: skip


def test_without_sidecars_everything_runs_as_the_agent() -> None:
    cfg = layout.agent_config(spec(sidecars=()), "a", runtime=None, launcher_pid=1)
    assert cfg.user == "1000:1000"
    assert cfg.command[cfg.command.index("--") - 1] == layout.FORWARDER_INSIDE


def test_limits_from_the_plan() -> None:
    kw = layout.agent_config(spec(cpus=1.5, memory="2GiB"), "a", runtime=None,
                             launcher_pid=1).create_kwargs()  # fmt: skip
    assert kw["nano_cpus"] == 1_500_000_000
    assert kw["mem_limit"] == 2 * 1024**3
    unlimited = layout.agent_config(spec(), "a", runtime=None, launcher_pid=1).create_kwargs()
    assert "nano_cpus" not in unlimited and "mem_limit" not in unlimited
    assert "runtime" not in unlimited  # None means the engine default, left out


@pytest.mark.parametrize(("text", "expected"), [
    ("512m", 512 * 1024**2), ("4g", 4 * 1024**3), ("4GiB", 4 * 1024**3), ("1024", 1024),
    ("1.5g", int(1.5 * 1024**3)), ("100kb", 100 * 1024),
])  # fmt: skip
def test_parse_memory(text: str, expected: int) -> None:
    assert layout.parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "-1g", "4 zb"])
def test_parse_memory_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        layout.parse_memory(bad)


def test_workspace_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = layout.agent_config(spec(), "a", runtime=None, launcher_pid=1)
    assert layout.Mount("/workspace", "bb-dev-amber-1a2b-work", "volume") in copy.mounts
    assert layout.agent_user(spec()) == "1000:1000"
    monkeypatch.setattr(host_user, "_owner_of", lambda p: (1234, 1235))
    s = spec(workspace_mode="mount", workspace_path=str(tmp_path))
    mount = layout.agent_config(s, "a", runtime=None, launcher_pid=1)
    assert layout.Mount("/workspace", str(tmp_path), "bind") in mount.mounts
    assert layout.agent_user(s) == "1234:1235"  # the files' owner edits them
    monkeypatch.setattr(host_user, "_owner_of", lambda p: (1234, 0))
    assert layout.agent_user(s) == "1234:1234"  # never root's group


def test_a_root_owned_workspace_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:  # fmt: skip
    """uid 0 without capabilities still owns root's files and could chmod them u+s."""
    monkeypatch.setattr(host_user, "_owner_of", lambda p: (0, 0))
    s = spec(workspace_mode="mount", workspace_path=str(tmp_path))
    with pytest.raises(UnsafeWorkspace, match="owned by root"):
        layout.agent_user(s)  # what prepare asks first, before any engine object exists


def test_agent_env_points_at_the_forwarded_egress_and_tools() -> None:
    s = spec(tools=(ToolMount(Path("/h/agents"), "/opt/bot-bottle/agents", "bin"),))
    env = layout.agent_env(s)
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert env["HOME"] == "/home/agent"
    assert env["SSL_CERT_FILE"] == "/home/agent/.bot-bottle/ca-bundle.pem"
    assert env["PATH"].startswith("/opt/bot-bottle/agents/bin:")
    assert env["FOO"] == "bar"


def test_names_derive_from_the_slug() -> None:
    n = layout.Names.of("x-1")
    assert (n.agent, n.home, n.work) == ("bb-x-1-agent", "bb-x-1-home", "bb-x-1-work")


def test_files_the_launch_read_are_read_only_and_their_directories_unmovable(
    tmp_path: Path,
) -> None:
    (tmp_path / "prompts").mkdir()
    s = spec(workspace_mode="mount", workspace_path=str(tmp_path),
             read_only=(str(tmp_path / "bot-bottle.yaml"), str(tmp_path / "prompts" / "t.md"),
                        "/elsewhere/ca.pem"))  # fmt: skip
    mounts = layout.agent_config(s, "a", runtime=None, launcher_pid=1).mounts
    ws = mounts.index(layout.Mount("/workspace", str(tmp_path), "bind"))
    assert mounts[ws + 1 :][:3] == (
        layout.Mount("/workspace/bot-bottle.yaml", str(tmp_path / "bot-bottle.yaml"), "bind", True),
        layout.Mount("/workspace/prompts", str(tmp_path / "prompts"), "bind", False),
        layout.Mount("/workspace/prompts/t.md", str(tmp_path / "prompts" / "t.md"), "bind", True),
    )
    assert not any(m.source == "/elsewhere/ca.pem" for m in mounts)  # not in the workspace
    copy = layout.agent_config(spec(read_only=(str(tmp_path / "x"),)), "a", runtime=None,
                               launcher_pid=1)  # fmt: skip
    assert not any(m.target.startswith("/workspace/") for m in copy.mounts)


def test_a_kept_container_without_the_protective_binds_is_detected(tmp_path: Path) -> None:
    s = spec(workspace_mode="mount", workspace_path=str(tmp_path),
             read_only=(str(tmp_path / "bot-bottle.yaml"),))  # fmt: skip
    created = [{"Destination": m.target, "RW": not m.read_only}
               for m in layout.agent_config(s, "a", runtime=None, launcher_pid=1).mounts]  # fmt: skip
    assert layout.unprotected(created, s) == []
    later = spec(workspace_mode="mount", workspace_path=str(tmp_path),
                 read_only=(str(tmp_path / "bot-bottle.yaml"), str(tmp_path / "p.md")))  # fmt: skip
    assert layout.unprotected(created, later) == ["/workspace/p.md"]
    rw = [{**m, "RW": True} for m in created]
    assert layout.unprotected(rw, s) == ["/workspace/bot-bottle.yaml"]
