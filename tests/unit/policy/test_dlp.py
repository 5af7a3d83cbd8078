"""DLP detectors: built-in formats, known values in their encodings, canaries, false positives."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import pytest

from bot_bottle.policy.dlp import Scanner

# Fake values assembled at runtime so this file does not itself look like a leak.
GH = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"
AWS_ID = "AKIA" + "Z7QX3B5N2M4K6J8H"
AWS_SECRET = "q8Zk2Lw9Rt4Yp1Xv7Nb3Mc6Hd0Gf5Js2Ke8Aa9B/"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_R = "rk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyD3x9Qm4Lp7Vn2Kc8Rt5Wy1Zb6Hj0Fg3Ts"
OPENAI = "sk-proj-" + "Xk9Lm2Qp7Rv4Tw1Yz6Ab3Cd8Ef5Gh0Ij2Kl7Mn4Op"
ANTHROPIC = "sk-ant-api03-" + "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd8Ss7Aa6Qq5Ww4Ee3Rr2Tt1"
GITLAB = "glpat-" + "x9K2mQ7vR4tL1pW8nZ3b"
PEM_BODY = base64.b64encode(bytes(range(256))).decode()
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(PEM_BODY[i : i + 64] for i in range(0, len(PEM_BODY), 64))
    + "\n-----END RSA PRIVATE KEY-----\n"
)


def _jwt(header: dict[str, str]) -> str:
    def enc(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc(header)}.{enc({'sub': '1234567890', 'name': 'x'})}.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("text", "detector"),
    [
        (f"export AWS_ACCESS_KEY_ID={AWS_ID}\n", "aws-access-key"),
        ("ASIA" + AWS_ID[4:], "aws-access-key"),
        (f"aws_secret_access_key = {AWS_SECRET}\n", "aws-secret-key"),
        (f'"SecretAccessKey": "{AWS_SECRET}"', "aws-secret-key"),
        (f"token {GH}", "github-token"),
        ("gho_" + GH[4:], "github-token"),
        ("github_pat_" + "11ABCDEFG0" + "a1B2c3D4e5" * 6, "github-token"),
        (f"PRIVATE-TOKEN: {GITLAB}", "gitlab-token"),
        (f"Authorization: Bearer {SLACK}", "slack-token"),
        (STRIPE, "stripe-key"),
        (STRIPE_R, "stripe-key"),
        (f"key={GOOGLE}", "google-api-key"),
        (f"OPENAI_API_KEY={OPENAI}", "openai-key"),
        (f"x-api-key: {ANTHROPIC}", "anthropic-key"),
        (PEM, "private-key"),
        (json.dumps({"key": PEM}), "private-key"),
        (_jwt({"alg": "HS256", "typ": "JWT"}), "jwt"),
        ('db_password = "Zq8#vL2!mR9x"\n', "high-entropy-assignment"),
        ('{"client_secret": "f3K9q2Lm7Vx1Rt8Yp4Wz"}', "high-entropy-assignment"),
        ("ACCESS_TOKEN=a8F3k9Q2m7V1x4R8t6Y2\n", "high-entropy-assignment"),
        ("apiKey: 'Xy7Kq2Lm9Vn4Rt1Wz8Pb'", "high-entropy-assignment"),
    ],
)
def test_builtin_detectors(text: str, detector: str) -> None:
    findings = Scanner().scan(text)
    assert detector in {f.detector for f in findings}, findings
    assert Scanner().first(text.encode()) is not None


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPLE",  # AWS's documentation key
        "xAKIA" + AWS_ID[4:],  # glued to a longer blob
        "ghp_short",
        "-----BEGIN RSA PRIVATE KEY-----",  # a PEM parser's constant, no key
        "eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",  # no alg
        "class='sk-fading-circle-spinner-container'",
        "password = getpass.getpass(prompt)",
        'password = "changeme-example-1234"',
        "token = self.session_token_value",
        "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']",
        "password: ${{ secrets.DB_PASSWORD }}",
        "xoxb-your-token-here",
    ],
)
def test_near_misses_are_not_findings(text: str) -> None:
    assert Scanner().scan(text) == []


PACKAGE_JSON = json.dumps(
    {
        "name": "@acme/web",
        "version": "3.14.2",
        "scripts": {"build": "tsc -p .", "test": "vitest run --coverage", "token": "node t.js"},
        "dependencies": {"react": "^18.2.0", "jsonwebtoken": "^9.0.2", "@types/node": "20.11.5"},
        "repository": {"type": "git", "url": "https://github.com/acme/web.git"},
    },
    indent=2,
)
PYTHON_FILE = """
import os
from dataclasses import dataclass

API_TOKEN_ENV = "ACME_TOKEN"
TOKEN_URL = "https://oauth2.example.com/token"


@dataclass
class Client:
    token: str = ""
    password_hash: bytes = b""

    def auth(self, secret: str) -> dict[str, str]:
        token = os.environ.get(API_TOKEN_ENV, self.token)
        return {"Authorization": f"Bearer {token}"}
"""
LOCKFILE = (
    '"node_modules/react": {"version": "18.2.0", "resolved": '
    '"https://registry.npmjs.org/react/-/react-18.2.0.tgz", "integrity": '
    '"sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ=="}\n'
    "requests==2.31.0 --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f\n"
)


@pytest.mark.parametrize("text", [PACKAGE_JSON, PYTHON_FILE, LOCKFILE])
def test_ordinary_files_have_no_findings(text: str) -> None:
    assert Scanner().scan(text) == []


SECRET = "s3cr3t-Value/With+Chars=="


@pytest.mark.parametrize(
    "encoded",
    [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"user:{SECRET}".encode()).decode(),  # Basic auth
        base64.b64encode(f"ab:{SECRET}".encode()).decode(),
        base64.b64encode(f"abc:{SECRET}".encode()).decode(),
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        SECRET.replace("/", "\\/"),  # JSON-escaped slash
    ],
)
def test_exact_value_found_in_its_encodings(encoded: str) -> None:
    scanner = Scanner(exact={"sidecar-credential": SECRET}, builtin=False)
    f = scanner.first(f"GET /x?q={encoded} HTTP/1.1")
    assert f is not None
    assert f.detector == "sidecar-credential"
    assert f.fingerprint == hashlib.sha256(SECRET.encode()).hexdigest()[:12]


def test_short_exact_values_are_ignored() -> None:
    scanner = Scanner(exact={"protected-env": "hunter2"}, canaries=["abc"], builtin=False)
    assert scanner.scan("hunter2 abc") == []


def test_canary() -> None:
    scanner = Scanner(canaries=["CANARY-d41d8cd98f00"])
    [f] = scanner.scan(b"body=CANARY-d41d8cd98f00&x=1")
    assert (f.detector, f.start, f.end) == ("canary", 5, 24)


def test_custom_patterns_and_empty_matches() -> None:
    scanner = Scanner(patterns=[r"ACME-[0-9]{6}"], builtin=False)
    assert [f.detector for f in scanner.scan("id ACME-123456")] == ["custom:0"]
    with pytest.raises(ValueError, match=r"dlp.patterns\[1\]: .*empty string"):
        Scanner(patterns=[r"ACME-[0-9]{6}", r"x*"], builtin=False)


def test_findings_never_contain_the_secret() -> None:
    f = Scanner().first(f"key={GH}")
    assert f is not None
    assert GH not in repr(f)
    assert f.fingerprint == hashlib.sha256(GH.encode()).hexdigest()[:12]


def test_text_offsets_are_character_offsets() -> None:
    text = f"héllo wörld {GH}"
    [f] = Scanner().scan(text)
    assert text[f.start : f.end] == GH


def test_scan_orders_by_position_and_first_is_none_on_clean_input() -> None:
    text = f"{STRIPE} then {GH}"
    assert [f.detector for f in Scanner().scan(text)] == ["stripe-key", "github-token"]
    assert Scanner().first("nothing to see here") is None


@pytest.mark.parametrize(
    ("text", "detector"),
    [
        ("ApI_KeY = 'Xy7Kq2Lm9Vn4Rt1Wz8Pb'", "high-entropy-assignment"),
        ('"PassWord": "Zq8#vL2!mR9xQ4"', "high-entropy-assignment"),
        ("AccessToken\t:= a8F3k9Q2m7V1x4R8t6Y2", "high-entropy-assignment"),
        (f"Secret_Access_Key: {AWS_SECRET}", "aws-secret-key"),
    ],
)
def test_keywords_are_found_in_any_letter_case(text: str, detector: str) -> None:
    assert detector in {f.detector for f in Scanner().scan(text)}


def test_a_rejected_candidate_does_not_hide_a_secret_after_it() -> None:
    # "sk-" followed by a long slug is a candidate that fails the OpenAI check; the
    # Stripe key inside its span is still found.
    text = f"task-{STRIPE_R}"
    assert [f.detector for f in Scanner().scan(text)] == ["stripe-key"]
    assert Scanner().first(text) is not None


def test_a_known_value_is_reported_before_a_format_match() -> None:
    scanner = Scanner(exact={"sidecar-credential": GH})
    text = f"{STRIPE} and {GH}"
    f = scanner.first(text)
    assert f is not None and f.detector == "sidecar-credential"
    assert {f.detector for f in scanner.scan(text)} == {
        "stripe-key",
        "github-token",
        "sidecar-credential",
    }


@pytest.mark.parametrize("value", ["nul\0byte-value", "héllo-wörld-pass", "a.b*c+d?(e)[f]{g}|h^$"])
def test_known_values_are_matched_byte_for_byte(value: str) -> None:
    scanner = Scanner(exact={"protected-env": value}, builtin=False)
    text = f"x={value};"
    [f] = scanner.scan(text)
    assert text[f.start : f.end] == value
    near = value[:-1] + ("Z" if value[-1] != "Z" else "Y")
    assert scanner.scan(f"x={near};") == []


def test_a_scanner_with_nothing_to_find() -> None:
    assert Scanner(builtin=False).scan("anything at all") == []
    assert Scanner().scan(b"") == []
    assert Scanner().first("") is None
