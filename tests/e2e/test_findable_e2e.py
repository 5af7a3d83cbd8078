"""Slugs are findable and bottles work from any directory (issue 12, items 2 and 3), on
a real namespace bottle: `run` names its bottle at start and at exit (without --keep
too), `logs --last` finds the last bottle of this manifest after it was removed, `ls
--all` lists it, and `logs SLUG` / `resume SLUG` work from another directory, where
`resume` still refuses a configuration changed since it was approved."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e_support import agent_workspace, base_env, bb, bottles, trust

pytestmark = pytest.mark.e2e

MANIFEST = """\
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, 'curl -sS --max-time 10 http://denied.example.test/ ; echo {marker}']
    egress: {{routes: []}}
    workspace: {{mode: copy, path: .}}
    backend: namespace
agents:
  a: {{bottle: b}}
"""


def _slug(stderr: str) -> str:
    m = re.search(r"bottle (\S+) started", stderr)
    assert m, stderr
    return m.group(1)


def test_slug_printed_and_logs_last_after_removal(tmp_path: Path, bwrap_ok: None) -> None:
    env = base_env(tmp_path)
    proj, elsewhere = agent_workspace(tmp_path / "proj"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (proj / "bot-bottle.yaml").write_text(MANIFEST.format(marker="first"))
    trust(env, proj)
    r = bb(["run", "a", "-y"], env, proj, timeout=180)
    assert r.returncode == 0, r.stderr
    slug = _slug(r.stderr)
    assert f"bottle {slug} ended: the agent exited with code 0" in r.stderr, r.stderr
    assert f"bot-bottle logs {slug}" in r.stderr.split("ended:")[1], r.stderr
    assert bottles(env, proj) == []  # removed, as it was not kept

    last = bb(["logs", "--last", "--denied"], env, proj)
    assert last.returncode == 0, last.stderr
    assert "denied.example.test" in last.stdout and slug in last.stderr, last
    every = json.loads(bb(["ls", "--all", "--json"], env, elsewhere).stdout)
    assert [(b["slug"], b["status"]) for b in every] == [(slug, "removed")]
    there = bb(["logs", slug, "--denied"], env, elsewhere)
    assert there.returncode == 0 and "denied.example.test" in there.stdout, there


def test_resume_from_another_directory_checks_approval(tmp_path: Path, bwrap_ok: None) -> None:
    env = base_env(tmp_path)
    proj, elsewhere = agent_workspace(tmp_path / "proj"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (proj / "bot-bottle.yaml").write_text(MANIFEST.format(marker="first"))
    trust(env, proj)
    r = bb(["run", "a", "-y", "--keep", "-f", "bot-bottle.yaml"], env, proj, timeout=180)
    assert r.returncode == 0, r.stderr
    slug = _slug(r.stderr)
    try:
        info = json.loads(bb(["info", slug], env, elsewhere).stdout)
        assert info["manifest_path"] == str((proj / "bot-bottle.yaml").resolve())
        assert info["extra"]["workspace_path"] == str(proj.resolve())

        again = bb(["resume", slug, "-y"], env, elsewhere, timeout=180)
        assert again.returncode == 0, again.stderr
        assert "first" in again.stdout and f"bottle {slug} started" in again.stderr, again
        assert bb(["logs", slug], env, elsewhere).returncode == 0

        # The manifest changed behind the bottle: an unattended resume refuses it, from
        # anywhere, as `run -y` would; without a terminal and without -y it asks nobody.
        (proj / "bot-bottle.yaml").write_text(MANIFEST.format(marker="second"))
        changed = bb(["resume", slug, "-y"], env, elsewhere, timeout=180)
        assert changed.returncode == 2, changed.stderr
        assert "changed since approval" in changed.stderr and "second" not in changed.stdout
        assert bb(["resume", slug], env, elsewhere).returncode == 2
        trust(env, proj)
        ok = bb(["resume", slug, "-y"], env, elsewhere, timeout=180)
        assert ok.returncode == 0 and "second" in ok.stdout, ok.stderr
    finally:
        bb(["rm", slug], env, elsewhere)
