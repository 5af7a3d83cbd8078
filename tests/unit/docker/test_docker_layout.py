"""The Docker bottle's shape as values: every container hardened, the agent on no
network of its own, limits from the plan, sockets mounted read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.backends.base import BottleSpec, SidecarLink, ToolMount
from bot_bottle.backends.docker import layout


def spec(**kw: object) -> BottleSpec:
    base: dict[str, object] = {
        "slug": "dev-amber-1a2b", "state_dir": Path("/state/dev-amber-1a2b"),
        "workspace_mode": "copy", "workspace_path": "/src",
        "env": {"FOO": "bar"},
        "sidecars": (SidecarLink("egress", Path("/state/sockets/egress.sock"), 3128),),
    }  # fmt: skip
    base.update(kw)
    return BottleSpec(**base)  # type: ignore[arg-type]


def test_both_containers_are_hardened() -> None:
    for cfg in (layout.sidecar_config(spec(), "relay:1", runtime=None, launcher_pid=7),
                layout.agent_config(spec(), "agent:1", runtime=None, launcher_pid=7)):  # fmt: skip
        kw = cfg.create_kwargs()
        assert kw["cap_drop"] == ["ALL"]
        assert kw["security_opt"] == ["no-new-privileges"]
        assert kw["read_only"] is True
        assert "/tmp" in kw["tmpfs"]
        assert kw["pids_limit"] > 0
        assert "privileged" not in kw
        assert kw["labels"][layout.LABEL_SLUG] == "dev-amber-1a2b"
        assert kw["labels"][layout.LABEL_LAUNCHER] == "7"


def test_agent_joins_the_relay_namespace_and_runs_as_agent_user() -> None:
    kw = layout.agent_config(spec(), "agent:1", runtime=None, launcher_pid=1).create_kwargs()
    assert kw["network_mode"] == "container:bb-dev-amber-1a2b-sidecar"
    assert "network" not in kw
    assert kw["user"] == "1000:1000"


def test_relay_is_on_the_internal_network_only_with_sockets_read_only() -> None:
    cfg = layout.sidecar_config(spec(), "relay:1", runtime="runsc", launcher_pid=1)
    kw = cfg.create_kwargs()
    assert kw["network"] == "bb-dev-amber-1a2b-internal"
    assert kw["runtime"] == "runsc"
    sockets = [m for m in cfg.mounts if m.source == "/state/sockets"]
    assert sockets and all(m.read_only for m in cfg.mounts)
    assert cfg.command[-1] == "3128=/run/bot-bottle/links/egress/egress.sock"


def test_network_has_no_host_address() -> None:
    assert layout.NETWORK_OPTIONS == {"com.docker.network.bridge.inhibit_ipv4": "true"}


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


def test_workspace_modes(tmp_path: Path) -> None:
    copy = layout.agent_config(spec(), "a", runtime=None, launcher_pid=1)
    assert layout.Mount("/workspace", "bb-dev-amber-1a2b-work", "volume") in copy.mounts
    assert copy.user == "1000:1000"
    s = spec(workspace_mode="mount", workspace_path=str(tmp_path))
    mount = layout.agent_config(s, "a", runtime=None, launcher_pid=1)
    assert layout.Mount("/workspace", str(tmp_path), "bind") in mount.mounts
    st = tmp_path.stat()
    assert mount.user == f"{st.st_uid}:{st.st_gid}"  # the files' owner edits them


def test_agent_env_points_at_the_relayed_egress_and_tools() -> None:
    s = spec(tools=(ToolMount(Path("/h/agents"), "/opt/bot-bottle/agents", "bin"),))
    env = layout.agent_env(s)
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert env["HOME"] == "/home/agent"
    assert env["SSL_CERT_FILE"] == "/home/agent/.bot-bottle/ca-bundle.pem"
    assert env["PATH"].startswith("/opt/bot-bottle/agents/bin:")
    assert env["FOO"] == "bar"


def test_names_derive_from_the_slug() -> None:
    n = layout.Names.of("x-1")
    assert (n.network, n.sidecar, n.agent, n.home, n.work) == (
        "bb-x-1-internal", "bb-x-1-sidecar", "bb-x-1-agent", "bb-x-1-home", "bb-x-1-work")  # fmt: skip


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
