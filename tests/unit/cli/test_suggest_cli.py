"""`suggest` and `logs --denied [--all]` on an audit file: what they print and leave out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bot_bottle.sidecars.egress.audit import AuditWriter


def bb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, check=False)  # fmt: skip


def _audit(path: Path) -> None:
    with AuditWriter(path, "dev") as w:
        for host, p, rule, expected in [
            ("pypi.org", "/simple/requests/", "route", False),
            ("ab.chatgpt.com", "/otlp/v1/metrics", "route", True),
            ("evil.example", "/x", "canary", False),
        ]:
            rec = {"method": "GET", "host": host, "path": p, "scheme": "https", "port": 443,
                   "decision": "deny", "rule": rule, "status": 403}  # fmt: skip
            w.write(rec | ({"expected": True} if expected else {}))


def test_suggest_and_logs_leave_expected_denials_out_unless_all(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _audit(log)
    out = bb("suggest", "--file", str(log), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "paste them under bottles.dev.egress.routes" in out.stdout
    assert yaml.safe_load(out.stdout) == [
        {"host": "pypi.org", "path_allowlist": ["/simple/requests"], "methods": ["GET"]}
    ]
    every = json.loads(bb("suggest", "--file", str(log), "--all", "--json", cwd=tmp_path).stdout)
    assert [r["host"] for r in every] == ["ab.chatgpt.com", "pypi.org"]
    shown = bb("logs", "--file", str(log), "--denied", "--json", cwd=tmp_path).stdout
    assert [json.loads(x)["host"] for x in shown.splitlines()] == ["pypi.org", "evil.example"]
    shown = bb("logs", "--file", str(log), "--denied", "--all", "--json", cwd=tmp_path).stdout
    assert len(shown.splitlines()) == 3


def test_suggest_with_nothing_to_suggest_says_so(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    out = bb("suggest", "--file", str(log), cwd=tmp_path)
    assert out.returncode == 0 and "no denials a route would fix" in out.stdout
    missing = bb("suggest", "--file", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert missing.returncode == 2 and "no audit log" in missing.stderr
    assert "Traceback" not in missing.stderr


MANIFEST = """\
bottles:
  dev:
    agent_provider: {template: command, command: [sh, -c, "true"]}
    egress:
      routes:
        - host: registry.npmjs.org   # the operator's comment
    workspace: none
agents:
  a: {bottle: dev}
"""


def _bottle(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    """A bottle's state (metadata and audit log) and its approved manifest."""
    from bot_bottle.manifest.loader import load_manifest
    from bot_bottle.plan.resolver import resolve
    from bot_bottle.state.approval import ApprovalStore, evaluate
    from bot_bottle.state.store import StateStore

    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BOT_BOTTLE_HOME": str(tmp_path / "bb"),
    }
    manifest = tmp_path / "bot-bottle.yaml"
    manifest.write_text(MANIFEST)
    store = StateStore(tmp_path / "bb")
    meta = store.create(agent="a", bottle="dev", backend="namespace",
                        manifest_path=str(manifest), manifest_digest="")  # fmt: skip
    _audit(store.audit_log(store.dir(meta.slug)))
    approvals = ApprovalStore(store.root)
    approvals.approve(evaluate(approvals, resolve(load_manifest(manifest), "a", env)))
    return env, manifest, meta.slug


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, input=stdin, check=False)  # fmt: skip


def test_suggest_persist_writes_the_routes_shown_once_confirmed(tmp_path: Path) -> None:
    env, manifest, slug = _bottle(tmp_path)
    no = run(["suggest", slug, "--persist"], env, tmp_path, stdin="n\n")
    assert no.returncode == 1 and "pypi.org" in no.stdout, (no.stdout, no.stderr)
    assert manifest.read_text() == MANIFEST
    yes = run(["suggest", slug, "--persist"], env, tmp_path, stdin="y\n")
    assert yes.returncode == 0, yes.stderr
    assert f"wrote {manifest}" in yes.stdout, yes.stdout
    text = manifest.read_text()
    assert "# the operator's comment" in text and f"suggested from the denials of {slug}" in text
    assert yaml.safe_load(text)["bottles"]["dev"]["egress"]["routes"][1] == {
        "host": "pypi.org", "path_allowlist": ["/simple/requests"], "methods": ["GET"]
    }  # fmt: skip
    check = run(["plan", "a", "--json", "-f", str(manifest)], env, tmp_path)
    assert json.loads(check.stdout)["approval"]["status"] == "approved", check.stdout
    # Already there: -y asks nothing, and nothing changes.
    again = run(["suggest", slug, "--persist", "-y"], env, tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout
    assert manifest.read_text() == text


def test_suggest_persist_refuses_a_manifest_changed_since_approval(tmp_path: Path) -> None:
    env, manifest, slug = _bottle(tmp_path)
    manifest.write_text(MANIFEST.replace("registry.npmjs.org", "exfil.example"))
    out = run(["suggest", slug, "--persist", "-y"], env, tmp_path)
    assert out.returncode == 2 and "changed since it was approved" in out.stderr, out.stderr
    assert "exfil.example" in manifest.read_text() and "pypi.org" not in manifest.read_text()
    nofile = run(["suggest", "--file", str(tmp_path / "x.jsonl"), "--persist"], env, tmp_path)
    assert nofile.returncode == 2 and "SLUG" in nofile.stderr, nofile.stderr
