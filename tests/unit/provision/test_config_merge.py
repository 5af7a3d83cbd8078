"""An agent's own config is merged, never replaced, and read as hostile input: its
state survives `resume`, nothing it wrote overrides bot-bottle's keys, and what is
planted in HOME (links, FIFOs, hard links to host files, huge or deep JSON) is
neither followed nor trusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakes.executor import RecordingExecutor

from bot_bottle.backends import host_user
from bot_bottle.backends.confined_dir import ConfinedDir
from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.plan.model import ProvisionFile
from bot_bottle.providers.base import WORKSPACE_KEY
from bot_bottle.provision import config_merge
from bot_bottle.provision.steps import ProvisionInputs, plan_files

OURS = {"hasCompletedOnboarding": True,
        "projects": {WORKSPACE_KEY: {"hasTrustDialogAccepted": True}},
        "customApiKeyResponses": {"approved": ["placeholder-suffix"], "rejected": []}}  # fmt: skip


@pytest.fixture(autouse=True)
def launcher_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in tests/unit/backends: the agent's user depends on the launcher's."""
    monkeypatch.setattr(host_user, "_euid", lambda: 1000)


def _merged(existing: bytes | None) -> dict[str, object]:
    out: dict[str, object] = json.loads(
        config_merge.merged_config(existing, json.dumps(OURS).encode(), "/workspace")
    )
    return out


def test_agent_state_survives_and_our_keys_win() -> None:
    theirs = {
        "numStartups": 7,
        "hasCompletedOnboarding": False,
        "projects": {
            "/workspace": {"hasTrustDialogAccepted": False, "lastSessionId": "abc"},
            "/other": {"x": 1},
        },
        "customApiKeyResponses": {"approved": ["agent-chosen"], "rejected": ["placeholder-suffix"]},
    }
    out = _merged(json.dumps(theirs).encode())
    assert out["numStartups"] == 7
    assert out["hasCompletedOnboarding"] is True
    assert out["projects"] == {
        "/workspace": {"hasTrustDialogAccepted": True, "lastSessionId": "abc"},
        "/other": {"x": 1},
    }
    assert out["customApiKeyResponses"] == {"approved": ["placeholder-suffix"], "rejected": []}


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        b"",
        b"not json",
        b"[1, 2]",
        b'"str"',
        b"{" * 100_000,
        b'{"projects": 5}',
        b'{"projects": {"/workspace": "yes"}}',
        b"\xff\xfe",
    ],
)
def test_hostile_or_absent_config_yields_ours(hostile: bytes | None) -> None:
    out = _merged(hostile)
    projects = out["projects"]
    assert isinstance(projects, dict)
    assert projects["/workspace"] == {"hasTrustDialogAccepted": True}
    assert out["hasCompletedOnboarding"] is True


def test_workspace_key_dropped_without_workspace() -> None:
    out = json.loads(config_merge.merged_config(None, json.dumps(OURS).encode(), ""))
    assert out["projects"] == {}


def _home(tmp_path: Path) -> tuple[Path, object]:
    spec = BottleSpec(slug="a-moss-0001", state_dir=tmp_path / "state", workspace_mode="none",
                      workspace_path="")  # fmt: skip
    target = NamespaceBackend(RecordingExecutor(), bwrap="bwrap").prepare(spec)
    return tmp_path / "state" / "home", target


def test_plan_files_merge_keeps_the_agents_file(tmp_path: Path) -> None:
    home, target = _home(tmp_path)
    (home / ".claude.json").write_text(json.dumps({"tipsHistory": {"a": 1}}))
    f = ProvisionFile("~/.claude.json", json.dumps(OURS).encode(), 0o600, merge_json=True)
    plan_files(target, ProvisionInputs(egress_ca_pem=b"", files=(f,)))  # type: ignore[arg-type]
    out = json.loads((home / ".claude.json").read_text())
    assert out["tipsHistory"] == {"a": 1}
    assert out["projects"] == {}  # a bottle without a workspace trusts no folder
    assert (home / ".claude.json").stat().st_mode & 0o777 == 0o600


def test_planted_links_and_fifos_read_as_absent(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text('{"hostKey": "HOST-SECRET"}')
    root = tmp_path / "home"
    root.mkdir()
    d = ConfinedDir(root)
    (root / "sym.json").symlink_to(secret)
    os.link(secret, root / "hard.json")  # a hard link to a host file
    os.mkfifo(root / "fifo.json")
    (root / "dir").symlink_to(tmp_path)  # a linked directory on the way
    (root / "big.json").write_bytes(b" " * 101)
    (root / "ok.json").write_bytes(b"{}")
    assert d.read("sym.json", 100) is None
    assert d.read("hard.json", 100) is None
    assert d.read("fifo.json", 100) is None  # and does not hang
    assert d.read("dir/host-secret", 100) is None
    assert d.read("big.json", 100) is None
    assert d.read("missing.json", 100) is None
    assert d.read("ok.json", 100) == b"{}"


def test_merge_through_a_planted_link_neither_reads_nor_writes_the_host(tmp_path: Path) -> None:
    home, target = _home(tmp_path)
    secret = tmp_path / "host-secret"
    secret.write_text('{"hostKey": "HOST-SECRET"}')
    (home / ".claude.json").symlink_to(secret)
    f = ProvisionFile("~/.claude.json", json.dumps(OURS).encode(), 0o600, merge_json=True)
    plan_files(target, ProvisionInputs(egress_ca_pem=b"", files=(f,)))  # type: ignore[arg-type]
    assert secret.read_text() == '{"hostKey": "HOST-SECRET"}'
    assert not (home / ".claude.json").is_symlink()
    assert "HOST-SECRET" not in (home / ".claude.json").read_text()
