"""Persisting a route: only into a manifest whose approval is current, and as approved
configuration afterwards; any refusal leaves the file and the approvals as they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot_bottle.errors import BotBottleError, ManifestError
from bot_bottle.manifest.loader import load_manifest
from bot_bottle.manifest.model import LIMITS, RouteSpec
from bot_bottle.plan.resolver import resolve
from bot_bottle.state.approval import ApprovalStore, NotApproved, evaluate
from bot_bottle.state.persistence import persist_routes

MANIFEST = """\
# the operator's notes
bottles:
  b:
    agent_provider: {template: command, command: [sh, -c, "true"]}
    egress:
      routes:
        - host: pypi.org   # packages
    workspace: none
agents:
  a: {bottle: b}
  other: {bottle: b, prompt_file: p.md}
"""

ROUTE = RouteSpec(host="api.example.test", path_allowlist=["/v1/"], methods=["GET"])


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "bot-bottle.yaml").write_text(MANIFEST)
    (tmp_path / "proj" / "p.md").write_text("the task")
    return tmp_path / "proj" / "bot-bottle.yaml"


def env_of(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path)}


def approve(root: Path, manifest: Path, env: dict[str, str], *agents: str) -> None:
    store = ApprovalStore(root)
    for a in agents:
        store.approve(evaluate(store, resolve(load_manifest(manifest), a, env)))


def status(root: Path, manifest: Path, env: dict[str, str], agent: str) -> str:
    store = ApprovalStore(root)
    return evaluate(store, resolve(load_manifest(manifest), agent, env)).status


def persist(root: Path, manifest: Path, env: dict[str, str], route: RouteSpec = ROUTE) -> str:
    done = persist_routes(root, str(manifest), "b", "a", [route], "granted r-1 by op", env)
    return done.report()


def test_an_approved_manifest_gains_the_route_and_stays_approved(
    tmp_path: Path, proj: Path
) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    os.chmod(proj, 0o640)
    approve(root, proj, env, "a", "other")
    report = persist(root, proj, env)
    text = proj.read_text()
    assert text.startswith(MANIFEST.split("    workspace")[0])  # all before the route kept
    assert "- host: api.example.test" in text and "# granted r-1 by op" in text
    assert f"wrote {os.path.realpath(proj)}" in report and "lines 8-11" in report, report
    assert status(root, proj, env, "a") == "approved"
    assert status(root, proj, env, "other") == "approved"
    plan = resolve(load_manifest(proj), "a", env)
    assert [r.host for r in plan.egress.routes][:2] == ["pypi.org", "api.example.test"]
    assert os.stat(proj).st_mode & 0o777 == 0o640
    assert not [p for p in proj.parent.iterdir() if p.name.endswith(".tmp")]
    # Once there, the same route again changes nothing.
    assert "unchanged" in persist(root, proj, env)


def test_a_manifest_changed_after_approval_is_refused_untouched(tmp_path: Path, proj: Path) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    approve(root, proj, env, "a")
    # What an agent with the workspace mounted writes between runs.
    tampered = MANIFEST.replace(
        "- host: pypi.org", "- host: evil.example\n        - host: pypi.org"
    )
    proj.write_text(tampered)
    record = ApprovalStore(root).file(os.path.realpath(proj)).read_bytes()
    with pytest.raises(NotApproved, match="changed since it was approved") as e:
        persist(root, proj, env)
    assert "the agent may have edited it" in str(e.value)
    assert proj.read_text() == tampered
    assert ApprovalStore(root).file(os.path.realpath(proj)).read_bytes() == record


def test_a_manifest_never_approved_is_refused(tmp_path: Path, proj: Path) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    with pytest.raises(NotApproved, match="never approved"):
        persist(root, proj, env)
    assert proj.read_text() == MANIFEST


def test_another_agent_whose_files_changed_is_not_approved_along(
    tmp_path: Path, proj: Path
) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    approve(root, proj, env, "a", "other")
    (proj.parent / "p.md").write_text("a prompt the agent rewrote")
    report = persist(root, proj, env)
    assert "not approved before, left so: agent other" in report
    assert status(root, proj, env, "a") == "approved"
    assert status(root, proj, env, "other") == "changed"


def test_an_invalid_result_is_refused_and_the_file_unchanged(tmp_path: Path, proj: Path) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    full = MANIFEST.replace(
        "        - host: pypi.org   # packages\n",
        "".join(f"        - host: h{i}.test\n" for i in range(LIMITS["routes"])),
    )
    proj.write_text(full)
    approve(root, proj, env, "a")
    with pytest.raises(ManifestError, match="nothing was written"):
        persist(root, proj, env)
    assert proj.read_text() == full
    assert status(root, proj, env, "a") == "approved"


def test_a_symlinked_manifest_is_written_where_it_really_is(tmp_path: Path, proj: Path) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    link = tmp_path / "link.yaml"
    link.symlink_to(proj)
    approve(root, proj, env, "a")
    persist(root, link, env)
    assert link.is_symlink() and "api.example.test" in proj.read_text()


def test_a_manifest_replaced_by_a_directory_is_refused(tmp_path: Path, proj: Path) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    approve(root, proj, env, "a")
    proj.unlink()
    proj.mkdir()
    with pytest.raises(BotBottleError):
        persist(root, proj, env)


def test_an_agent_moved_to_another_bottle_since_the_launch_is_refused(
    tmp_path: Path, proj: Path
) -> None:
    env, root = env_of(tmp_path), tmp_path / "state"
    approve(root, proj, env, "a")
    with pytest.raises(ManifestError, match="now runs in bottle b, not c"):
        persist_routes(root, str(proj), "c", "a", [ROUTE], "", env)
    assert proj.read_text() == MANIFEST
