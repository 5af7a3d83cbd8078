"""`bot-bottle suggest` on the audit log of a real bottle run: the agent was denied
hosts, paths and methods; the suggested YAML, pasted into the manifest as it is and
approved, lets the same requests through to the (fake) upstream on the next run.
Before that, nothing was allowed: the first run reached the upstream only on its
declared route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from e2e_support import base_env, bb, hand_over, trust
from fakes.provider_api import FakeProviderAPI

pytestmark = pytest.mark.e2e

PROBE = r"""
import json, urllib.request
r = {}
for method, url in [
    ("GET", "https://api.openai.com/v1/models"),
    ("POST", "https://api.openai.com/v1/responses"),
    ("GET", "https://chatgpt.com/backend-api/codex/models"),
    ("GET", "https://chatgpt.com/backend-api/wham/settings/user?x=1"),
    ("GET", "https://auth.openai.com/"),
    ("GET", "https://api.anthropic.com/v2/extra"),
    ("GET", "https://api.anthropic.com/v1/models"),
]:
    req = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            r[method + " " + url] = resp.status
    except urllib.error.HTTPError as e:
        r[method + " " + url] = e.code
print(json.dumps(r))
"""

HOSTS = ("api.anthropic.com", "api.openai.com", "chatgpt.com", "auth.openai.com")


def _manifest(tmp: Path, api: FakeProviderAPI, routes: list[dict[str, object]]) -> None:
    doc = {
        "bottles": {
            "b": {
                "agent_provider": {
                    "template": "command",
                    "command": ["sh", "-c", "python3 /workspace/probe.py > /workspace/out.json"],
                },
                "egress": {
                    "routes": routes,
                    "hosts": {h: api.address for h in HOSTS},
                    "upstream_ca": str(api.ca_path),
                    "ssrf_ip_allowlist": [f"{api.address}/32"],
                },
                "workspace": {"mode": "mount", "path": "ws"},
                "backend": "namespace",
            }
        },
        "agents": {"probe": {"bottle": "b"}},
    }
    (tmp / "bot-bottle.yaml").write_text(yaml.safe_dump(doc))


def test_suggest_from_a_real_run_then_paste(
    tmp_path: Path, fake_api: FakeProviderAPI, bwrap_ok: None
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(PROBE)
    hand_over(ws)
    declared = [{"host": "api.anthropic.com", "path_allowlist": ["/v1"]}]
    _manifest(tmp_path, fake_api, declared)
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "probe", "-y", "--keep"], env, tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr
    first = json.loads((ws / "out.json").read_text())
    assert sorted(set(first.values())) == [200, 403], first
    assert [q.path for q in fake_api.requests] == ["/v1/models"]

    slug = json.loads(bb(["ls", "--json"], env, tmp_path).stdout)[0]["slug"]
    s = bb(["suggest", slug], env, tmp_path)
    assert s.returncode == 0, s.stderr
    assert "bottles.b.egress.routes" in s.stdout
    assert "# api.anthropic.com already has a route (api.anthropic.com /v1)" in s.stdout
    suggested = yaml.safe_load(s.stdout)
    assert suggested == [
        {"host": "api.anthropic.com", "path_allowlist": ["/v2/extra"], "methods": ["GET"]},
        {"host": "api.openai.com", "path_allowlist": ["/v1"], "methods": ["GET", "POST"]},
        {"host": "auth.openai.com", "methods": ["GET"]},
        {"host": "chatgpt.com", "path_allowlist": ["/backend-api"], "methods": ["GET"]},
    ], s.stdout
    as_json = json.loads(bb(["suggest", slug, "--json"], env, tmp_path).stdout)
    assert as_json == suggested

    # Pasted as printed and approved, the same requests now reach the upstream.
    _manifest(tmp_path, fake_api, declared + suggested)
    trust(env, tmp_path)
    fake_api.requests.clear()
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr
    second = json.loads((ws / "out.json").read_text())
    assert 403 not in second.values(), second
    reached = sorted(q.path for q in fake_api.requests)
    assert reached == sorted([
        "/", "/backend-api/codex/models", "/backend-api/wham/settings/user?x=1",
        "/v1/models", "/v1/models", "/v1/responses", "/v2/extra",
    ]), reached  # fmt: skip
