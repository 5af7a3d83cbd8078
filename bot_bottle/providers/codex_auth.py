"""The host's Codex ChatGPT login (`auth.json`): validate it, take the access token for
egress, and derive a placeholder `auth.json` for the bottle.

The placeholder keeps the shape Codex needs to pick its ChatGPT code path (auth mode,
the selected account id, plan type, token expiry) while every credential in it is
replaced: the real bearer is injected by egress and never enters the bottle.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot_bottle.errors import CredentialError

PLACEHOLDER = "bot-bottle-placeholder"
_LOGIN_FIX = (
    "log in on the host: `bot-bottle agents exec codex -- login`, or set "
    "forward_host_credentials: false"
)
# Claims kept verbatim: Codex routes requests by account and gates features by plan.
_KEEP_AUTH_CLAIMS = ("chatgpt_account_id", "chatgpt_plan_type")
_TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")


def auth_path(host_env: Mapping[str, str]) -> Path:
    home = host_env.get("CODEX_HOME")
    if home:
        return Path(home).expanduser() / "auth.json"
    return Path(host_env.get("HOME", str(Path.home()))) / ".codex" / "auth.json"


def read_host_auth(
    host_env: Mapping[str, str], now: float | None = None
) -> tuple[dict[str, Any], str]:
    """The parsed host `auth.json` and its access token, or a `CredentialError` that
    says what is wrong with the login (never the token itself)."""
    path = auth_path(host_env)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialError(f"Codex host login not found at {path}", _LOGIN_FIX) from None
    except (OSError, ValueError) as e:
        raise CredentialError(
            f"cannot read Codex login {path}: {type(e).__name__}", _LOGIN_FIX
        ) from None
    if not isinstance(raw, dict):
        raise CredentialError(f"{path} is not a JSON object", _LOGIN_FIX)
    mode = raw.get("auth_mode")
    tokens = raw.get("tokens")
    if mode == "api_key" or (mode is None and raw.get("OPENAI_API_KEY") and not tokens):
        raise CredentialError(
            f"{path} holds an API key login; forwarding needs a ChatGPT login", _LOGIN_FIX
        )
    access = tokens.get("access_token") if isinstance(tokens, dict) else None
    if not isinstance(access, str) or not access:
        raise CredentialError(f"{path} has no tokens.access_token", _LOGIN_FIX)
    claims = jwt_claims(access)
    exp = claims.get("exp") if claims else None
    if not isinstance(exp, int | float):
        raise CredentialError(
            f"{path}: tokens.access_token is not a JWT with an expiry", _LOGIN_FIX
        )
    if exp <= (time.time() if now is None else now):
        raise CredentialError(
            f"the Codex access token in {path} has expired",
            "`bot-bottle agents exec codex -- login` on the host (any codex command refreshes it)",
        )
    return raw, access


def placeholder_auth(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the host `auth.json` with every secret replaced."""
    tokens = raw.get("tokens") if isinstance(raw.get("tokens"), dict) else {}
    assert isinstance(tokens, dict)
    out_tokens: dict[str, Any] = {}
    for key, value in tokens.items():
        if key in ("access_token", "id_token") and isinstance(value, str):
            out_tokens[key] = _placeholder_jwt(jwt_claims(value) or {})
        elif key == "account_id":
            out_tokens[key] = value
        else:
            out_tokens[key] = PLACEHOLDER
    out: dict[str, Any] = {"auth_mode": raw.get("auth_mode", "chatgpt"), "OPENAI_API_KEY": None}
    out["tokens"] = out_tokens
    if "last_refresh" in raw:
        out["last_refresh"] = raw["last_refresh"]
    return out


def _placeholder_jwt(claims: Mapping[str, Any]) -> str:
    kept: dict[str, Any] = {
        k: claims[k] for k in _TIME_CLAIMS if isinstance(claims.get(k), int | float)
    }
    auth = claims.get("https://api.openai.com/auth")
    if isinstance(auth, dict):
        kept["https://api.openai.com/auth"] = {
            k: auth[k] for k in _KEEP_AUTH_CLAIMS if isinstance(auth.get(k), str)
        }
    kept["email"] = "agent@bot-bottle.invalid"
    kept["sub"] = PLACEHOLDER

    def enc(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(kept)}.{PLACEHOLDER}"


def jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return body if isinstance(body, dict) else None
