from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from bot_bottle.errors import CredentialError
from bot_bottle.providers import codex_auth


def jwt(claims: dict[str, object]) -> str:
    def enc(o: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.sig-REAL"


def write(home: Path, body: object) -> dict[str, str]:
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "auth.json").write_text(json.dumps(body))
    return {"HOME": str(home)}


AUTH = {"chatgpt_account_id": "acct-123", "chatgpt_plan_type": "pro", "user_id": "user-SECRETISH"}


def good(exp: float) -> dict[str, object]:
    claims = {"exp": int(exp), "email": "me@corp.example", "https://api.openai.com/auth": AUTH}
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {"access_token": jwt(claims), "id_token": jwt(claims),
                   "refresh_token": "rt-REAL-REFRESH", "account_id": "acct-123"},
    }  # fmt: skip


def test_valid_login_yields_token_and_placeholder(tmp_path: Path) -> None:
    env = write(tmp_path, good(time.time() + 3600))
    raw, token = codex_auth.read_host_auth(env)
    assert token.endswith("sig-REAL")
    dummy = json.dumps(codex_auth.placeholder_auth(raw))
    for secret in ("sig-REAL", "rt-REAL-REFRESH", "me@corp.example", "user-SECRETISH"):
        assert secret not in dummy
    claims = codex_auth.jwt_claims(json.loads(dummy)["tokens"]["access_token"])
    assert claims is not None
    assert claims["https://api.openai.com/auth"] == {
        "chatgpt_account_id": "acct-123",
        "chatgpt_plan_type": "pro",
    }
    assert claims["exp"] == codex_auth.jwt_claims(token)["exp"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"auth_mode": "api_key", "OPENAI_API_KEY": "sk-x"}, "API key login"),
        ({"auth_mode": "chatgpt", "tokens": {}}, "no tokens.access_token"),
        ({"auth_mode": "chatgpt", "tokens": {"access_token": "opaque"}}, "not a JWT"),
        ("[1]", "not a JSON object"),
    ],
)
def test_bad_logins(tmp_path: Path, body: object, fragment: str) -> None:
    env = write(tmp_path, body if body != "[1]" else [1])
    with pytest.raises(CredentialError, match=fragment):
        codex_auth.read_host_auth(env)


def test_expired(tmp_path: Path) -> None:
    env = write(tmp_path, good(time.time() - 10))
    with pytest.raises(CredentialError, match="expired"):
        codex_auth.read_host_auth(env)


def test_missing_points_at_login(tmp_path: Path) -> None:
    with pytest.raises(CredentialError) as info:
        codex_auth.read_host_auth({"HOME": str(tmp_path)})
    assert "bot-bottle agents exec codex -- login" in info.value.fix


def test_codex_home_wins(tmp_path: Path) -> None:
    assert (
        codex_auth.auth_path({"CODEX_HOME": str(tmp_path), "HOME": "/x"}) == tmp_path / "auth.json"
    )
