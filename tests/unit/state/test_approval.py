"""Approvals: recorded per resolved manifest path and agent, invalidated by any change
in the plan or in a file the launch reads, free of secret values, and checked against
the bytes actually used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import load_manifest
from bot_bottle.plan.cache import cached_resolve
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.resolver import resolve
from bot_bottle.state.approval import ApprovalStore, evaluate, tree_digest

TOKEN = "ghp_" + "ApprovalRecordMustNotHoldThis0123"

MANIFEST = """
bottles:
  b:
    agent_provider: {template: command, command: [sh, -c, "true"]}
    egress:
      upstream_ca: ca.pem
      routes:
        - host: api.github.com
          auth: {scheme: Bearer, token_ref: GH_TOKEN}
    workspace: {mode: mount, path: .}
agents:
  a: {bottle: b, prompt_file: p.md, skills: [lint]}
  other: {bottle: b}
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, ApprovalStore, dict[str, str]]:
    proj = tmp_path / "proj"  # the manifest's directory, and the workspace
    proj.mkdir()
    (proj / "bot-bottle.yaml").write_text(MANIFEST)
    (proj / "p.md").write_text("the task")
    trustme.CA().cert_pem.write_to_path(str(proj / "ca.pem"))
    skills = proj / "skills"
    (skills / "lint").mkdir(parents=True)
    (skills / "lint" / "SKILL.md").write_text("lint things")
    env = {"HOME": str(tmp_path), "BOT_BOTTLE_SKILLS_DIR": str(skills), "GH_TOKEN": TOKEN}
    return proj / "bot-bottle.yaml", ApprovalStore(tmp_path / "state"), env


def plan_of(manifest: Path, env: dict[str, str], agent: str = "a") -> BottlePlan:
    return resolve(load_manifest(manifest), agent, env)


def test_approve_then_every_input_invalidates(
    setup: tuple[Path, ApprovalStore, dict[str, str]],
) -> None:
    manifest, store, env = setup
    v = evaluate(store, plan_of(manifest, env))
    assert v.status == "unapproved" and all(c.old is None for c in v.changes)
    store.approve(v)
    assert evaluate(store, plan_of(manifest, env)).status == "approved"
    assert store.status(str(manifest), "a") == "approved"
    assert store.status(str(manifest), "other") == "unapproved"  # approved per agent

    edits = [
        (manifest.parent / "p.md", "the task, rewritten", "prompt"),
        (manifest.parent / "skills" / "lint" / "SKILL.md", "exfiltrate", "skill lint SKILL.md"),
        (manifest.parent / "ca.pem", trustme.CA().cert_pem.bytes().decode(), "upstream_ca"),
        (manifest, MANIFEST.replace("sh, -c", "bash, -c"), "argv"),
    ]
    for path, text, key in edits:
        old = path.read_text()
        path.write_text(text)
        v = evaluate(store, plan_of(manifest, env))
        assert v.status == "changed" and key in [c.key for c in v.changes], (key, v.changes)
        assert store.status(str(manifest), "a") == "changed"
        path.write_text(old)
        assert evaluate(store, plan_of(manifest, env)).status == "approved"


def test_record_has_no_secret_and_lives_in_the_state_root(
    setup: tuple[Path, ApprovalStore, dict[str, str]],
) -> None:
    manifest, store, env = setup
    store.approve(evaluate(store, plan_of(manifest, env)))
    (record,) = store.dir.glob("*.json")
    text = record.read_text()
    assert TOKEN not in text and "GH_TOKEN" in text
    assert record.stat().st_mode & 0o077 == 0
    assert not any(p.name.endswith(".json") for p in manifest.parent.iterdir())


def test_keyed_by_the_resolved_path(
    setup: tuple[Path, ApprovalStore, dict[str, str]], tmp_path: Path
) -> None:
    manifest, store, env = setup
    store.approve(evaluate(store, plan_of(manifest, env)))
    link = tmp_path / "link.yaml"
    link.symlink_to(manifest)
    assert evaluate(store, plan_of(link, env)).status == "approved"
    assert store.status(str(link), "a") == "approved"
    # Re-pointed at another manifest with the same bytes elsewhere: not approved.
    other = tmp_path / "elsewhere"
    other.mkdir()
    for name in ("bot-bottle.yaml", "p.md", "ca.pem"):
        (other / name).write_bytes((manifest.parent / name).read_bytes())
    link.unlink()
    link.symlink_to(other / "bot-bottle.yaml")
    assert evaluate(store, plan_of(link, env)).status == "unapproved"


def test_upstream_ca_is_pinned_to_the_bytes_hashed(
    setup: tuple[Path, ApprovalStore, dict[str, str]],
) -> None:
    manifest, store, env = setup
    v = evaluate(store, plan_of(manifest, env))
    assert v.plan.egress.upstream_ca == (manifest.parent / "ca.pem").read_text()
    (manifest.parent / "ca.pem").write_text("/etc/shadow")  # a path, not a PEM
    with pytest.raises(ManifestError, match="not a PEM certificate bundle"):
        evaluate(store, plan_of(manifest, env))


def test_tree_digest_sees_links_modes_and_names(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    first = tree_digest(str(tmp_path))
    (tmp_path / "f").chmod(0o755)
    assert tree_digest(str(tmp_path)) != first
    (tmp_path / "l").symlink_to("/etc/passwd")
    linked = tree_digest(str(tmp_path))
    (tmp_path / "l").unlink()
    (tmp_path / "l").symlink_to("/etc/shadow")
    assert tree_digest(str(tmp_path)) != linked


def test_cache_miss_parses_the_bytes_it_hashed(tmp_path: Path) -> None:
    """A manifest swapped between the cache's read and the loader's would be parsed
    unhashed: the loader takes the bytes the cache read."""
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST.replace("ca.pem", "x"))
    loaded = load_manifest(tmp_path / "bot-bottle.yaml", b"agents: {}\n")
    assert loaded.manifest.agents == {}


def test_warm_path_checks_approval_without_the_schema(
    setup: tuple[Path, ApprovalStore, dict[str, str]],
) -> None:
    manifest, store, env = setup
    cache = manifest.parent / "cache"
    store.approve(evaluate(store, cached_resolve(manifest, "a", env, (), cache)))
    code = (
        "import sys; from pathlib import Path; from bot_bottle.plan.cache import cached_resolve;"
        "from bot_bottle.state.approval import ApprovalStore, evaluate;"
        f"p = cached_resolve(Path({str(manifest)!r}), 'a', {env!r}, (), Path({str(cache)!r}));"
        f"v = evaluate(ApprovalStore(Path({str(store.dir.parent)!r})), p);"
        "print(v.status, 'pydantic' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    assert out.stdout.strip() == "approved False False", out.stderr


def test_a_workspace_over_the_state_root_is_refused(
    setup: tuple[Path, ApprovalStore, dict[str, str]], tmp_path: Path
) -> None:
    manifest, _, env = setup
    proj = manifest.parent
    for root in (proj / "state", proj, tmp_path):  # inside, the same, or around it
        with pytest.raises(ManifestError, match="overlaps bot-bottle's state directory"):
            evaluate(ApprovalStore(root), plan_of(manifest, env))


def test_skills_launch_from_a_copy_of_the_bytes_hashed(
    setup: tuple[Path, ApprovalStore, dict[str, str]], tmp_path: Path
) -> None:
    manifest, store, env = setup
    skill = manifest.parent / "skills" / "lint"
    (tmp_path / "host-secret").write_text("host secret")
    (skill / "leak").symlink_to(tmp_path / "host-secret")
    (skill / "sub").symlink_to(tmp_path)  # a linked directory is not walked either
    v = evaluate(store, plan_of(manifest, env), pin=True)
    (copy,) = v.plan.skills
    assert copy.startswith(str(store.dir.parent / "snapshots")) and copy.endswith("/lint")
    (skill / "SKILL.md").write_text("changed after the check")  # too late: not used
    assert sorted(p.name for p in Path(copy).rglob("*")) == ["SKILL.md"]
    assert (Path(copy) / "SKILL.md").read_text() == "lint things"
    lines = {ln.key: ln.value for ln in v.lines}
    assert lines["skill lint leak"] == f"link -> {tmp_path / 'host-secret'}"
    unpinned = evaluate(store, plan_of(manifest, env))
    assert unpinned.plan.skills == (str(skill),)
