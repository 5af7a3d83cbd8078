"""Names are names: every name that becomes a path (agent, bottle, slug) is one plain
path component, checked at the manifest, at the state store and on the command line.
A name like `../../../tmp/x` once put a bottle's state and audit log outside
BOT_BOTTLE_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot_bottle.cli.main import cli
from bot_bottle.errors import ManifestError, StateError
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.state.store import StateStore

BAD = ["../../../tmp/x", "..", ".", "a/b", "/abs", ".hidden", "", "a\x00b", "a b", "-x",
       "x" * 200, "a\nb", "é"]  # fmt: skip
GOOD = ["a", "coder", "dev-1", "my_agent", "Claude.v2", "x" * 63]


@pytest.mark.parametrize("name", BAD)
def test_manifest_refuses_an_agent_name_that_is_not_a_name(name: str) -> None:
    text = {"bottles": {"b": {}}, "agents": {name: {"bottle": "b"}}}
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml(text))
    assert info.value.path.startswith("agents"), str(info.value)
    assert "name" in str(info.value)


@pytest.mark.parametrize("name", BAD)
def test_manifest_refuses_a_bottle_name_that_is_not_a_name(name: str) -> None:
    text = {"bottles": {name: {}}, "agents": {"a": {"bottle": name}}}
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml(text))
    assert info.value.path.startswith("bottles"), str(info.value)


@pytest.mark.parametrize("name", ["../../.ssh", "/root/.ssh", ".."])
def test_manifest_refuses_a_skill_name_that_is_a_path(name: str) -> None:
    """A skill name is looked up in the host's skills dir: `../../.ssh` would copy the
    host's SSH keys into the bottle."""
    text = {"bottles": {"b": {}}, "agents": {"a": {"bottle": "b", "skills": [name]}}}
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml(text))
    assert info.value.path == "agents.a.skills[0]", str(info.value)


@pytest.mark.parametrize("name", GOOD)
def test_manifest_takes_plain_names(name: str) -> None:
    m = parse_manifest(_yaml({"bottles": {name: {}}, "agents": {name: {"bottle": name}}}))
    assert name in m.agents and name in m.bottles


@pytest.mark.parametrize("slug", BAD)
def test_state_store_refuses_a_slug_that_is_not_a_name(tmp_path: Path, slug: str) -> None:
    s = StateStore(tmp_path / "home")
    for call in (s.dir, s.load, s.archived_audit_log, s.find_audit_log, s.retire):
        with pytest.raises(StateError, match="not a bottle name"):
            call(slug)
    assert not (tmp_path / "tmp").exists()


@pytest.mark.parametrize("agent", BAD)
def test_state_store_refuses_to_create_from_a_bad_agent_name(tmp_path: Path, agent: str) -> None:
    s = StateStore(tmp_path / "home" / "a" / "b")
    with pytest.raises(StateError):
        s.create(agent=agent, bottle="b", backend="namespace", manifest_path="m",
                 manifest_digest="d")  # fmt: skip
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("cmd", ["resume", "info", "stop", "rm"])
def test_cli_slug_arguments_are_names(tmp_path: Path, cmd: str) -> None:
    r = CliRunner().invoke(cli, [cmd, "../../../tmp/x"],
                           env={"BOT_BOTTLE_HOME": str(tmp_path / "h")})  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "not a bottle name" in r.output


def _yaml(obj: object) -> str:
    import json

    return json.dumps(obj)  # JSON is YAML
