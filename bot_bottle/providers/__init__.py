"""Everything specific to one agent CLI. The only place a provider's name appears."""

from __future__ import annotations

from bot_bottle.providers.base import Contribution, Provider, ProviderRoute
from bot_bottle.providers.claude import ClaudeProvider
from bot_bottle.providers.codex import CodexProvider
from bot_bottle.providers.command import CommandProvider

PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (ClaudeProvider(), CodexProvider(), CommandProvider())
}


def provider_for(template: str) -> Provider:
    return PROVIDERS[template]


__all__ = ["PROVIDERS", "Contribution", "Provider", "ProviderRoute", "provider_for"]
