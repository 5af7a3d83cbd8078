"""Each denial class answers 403 with its reason and lands in the audit log, and no
credential value reaches any file or log the run wrote."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from egress_harness import CANARY, PROTECTED, SECRET, Egress, curl
from egress_upstream import Upstream

from bot_bottle.policy.rules import BUG

pytestmark = pytest.mark.integration


def _denied(eg: Egress, code: int, body: str, rule: str, reason: str) -> None:
    assert code == 403, body
    assert body.startswith("bot-bottle egress denied "), body
    assert reason in body
    hint = body.split("\nto allow: ", 1)[1].strip()
    assert hint and hint != BUG, body
    rec = eg.wait_audit(lambda r: r.get("rule") == rule and r.get("decision") == "deny")
    assert rec["status"] == 403


def test_no_route_plain_http(egress: Egress) -> None:
    code, body, _ = curl(egress, "http://nope.example.test/x")
    _denied(egress, code, body, "route", "not in the egress routes")


def test_no_route_https_reads_the_same_body(egress: Egress) -> None:
    """HTTPS to a host with no route gets the body plain HTTP gets (see
    test_egress_denied_https.py for what such a tunnel may and may not do)."""
    code, body, _ = curl(egress, "https://nope.example.test/x")
    _denied(egress, code, body, "route", "not in the egress routes")


def test_connect_without_route_on_undeclared_port_refused_before_tls(egress: Egress) -> None:
    code, _, err = curl(egress, "https://nope.example.test:1/x")
    assert code in (0, 403) and "403" in err
    rec = egress.wait_audit(lambda r: r.get("rule") == "connect")
    assert rec["host"] == "nope.example.test" and rec["decision"] == "deny"


def test_path_not_allowed(egress: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(egress, f"https://api.example.test:{upstream.port}/v2/admin")
    _denied(egress, code, body, "path", "is not under an allowed prefix")


def test_method_not_allowed(egress: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(egress, "-X", "DELETE", f"https://api.example.test:{upstream.port}/v1/x")
    _denied(egress, code, body, "method", "is not allowed on route")


@pytest.mark.parametrize("path", ["/v1/%2e%2e/admin", "/v1/..%2fadmin", "/v1/%2fadmin"])
def test_encoded_path_tricks_rejected(egress: Egress, upstream: Upstream, path: str) -> None:
    code, body, _ = curl(egress, "--path-as-is", f"https://api.example.test:{upstream.port}{path}")
    _denied(egress, code, body, "path-rejected", "request path rejected")


def test_dot_dot_is_normalized_then_checked(egress: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(
        egress, "--path-as-is", f"https://api.example.test:{upstream.port}/v1/../admin"
    )
    _denied(egress, code, body, "path", "path /admin is not under")


def test_sni_host_mismatch_is_domain_fronting(egress: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(
        egress,
        "-H",
        f"Host: other.example.test:{upstream.port}",
        f"https://api.example.test:{upstream.port}/v1/x",
    )
    _denied(egress, code, body, "host-mismatch", "hosts disagree")


@pytest.mark.parametrize(
    ("payload", "rule", "detector_part"),
    [
        ("token=ghp_" + "a" * 36, "dlp", ""),
        (f"echo {SECRET} back", "dlp", "EGRESS_TOKEN_0"),
        (f"protected {PROTECTED}", "dlp", "EGRESS_PROTECT_0"),
        (f"[default]\naws_access_key_id = {CANARY}\n", "canary", "canary"),
    ],
    ids=["pattern", "sidecar-credential-echo", "protected-env", "canary"],
)
def test_dlp_on_body(
    egress: Egress, upstream: Upstream, payload: str, rule: str, detector_part: str
) -> None:
    before = len(upstream.records)
    code, body, _ = curl(
        egress, "--data-binary", payload, f"https://api.example.test:{upstream.port}/v1/upload"
    )
    reason = "exfiltration attempt" if rule == "canary" else "request carries a secret"
    _denied(egress, code, body, rule, reason)
    rec = egress.wait_audit(lambda r: r.get("rule") == rule)
    assert detector_part in rec["detector"] and rec["fingerprint"]
    assert len(upstream.records) == before, "a blocked request must not reach upstream"


def test_dlp_on_url_and_headers(egress: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(egress, f"https://api.example.test:{upstream.port}/v1/x?k={CANARY}")
    _denied(egress, code, body, "canary", "exfiltration attempt")
    code, body, _ = curl(
        egress, "-H", f"x-leak: {SECRET}", f"https://api.example.test:{upstream.port}/v1/x"
    )
    _denied(egress, code, body, "dlp", "request carries a secret")


def test_git_push_denied(egress: Egress, upstream: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "HOME": str(tmp_path),
        "GIT_SSL_CAINFO": str(egress.ca),
    }

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60
        )

    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x")
    out = git(
        "-c",
        f"http.proxy={egress.proxy}",
        "push",
        f"https://api.example.test:{upstream.port}/repo.git",
        "HEAD:main",
    )
    assert out.returncode != 0
    assert "403" in out.stderr
    rec = egress.wait_audit(lambda r: r.get("rule") == "git-push")
    assert rec["reason"] == "pushes go through the git gate"


def test_ssrf_loopback_denied_without_allowlist(
    make_egress: Callable[..., Egress], upstream: Upstream
) -> None:
    eg = make_egress(doc_extra={"ssrf_ip_allowlist": []})
    code, body, _ = curl(eg, f"https://loop.example.test:{upstream.port}/anything")
    _denied(eg, code, body, "ssrf", "127.0.0.1")


def test_credential_never_written_anywhere(egress: Egress, upstream: Upstream) -> None:
    """Runs last in this module: after every denial above, grep all the run wrote."""
    egress.stop()
    needles = [SECRET.encode(), PROTECTED.encode()]
    for path in egress.tmp.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"credential leaked into {path}"
    logs = "".join(egress.stdout + egress.stderr)
    assert not any(n.decode() in logs for n in needles)
    assert egress.audit(), "the audit log should not be empty"
