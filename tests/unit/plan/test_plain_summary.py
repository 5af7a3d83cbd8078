"""The plain-text summary (`run` without a terminal) says what the rich one says: every
word of the rich rendering, in the same order, and no table drawing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from rich.console import Console

from bot_bottle.cli.summary import plain_plan, render_plan, show_plan
from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.resolver import resolve

MANIFEST = """
bottles:
  dev:
    agent_provider: {template: claude, auth_token: TOK}
    egress:
      dlp: {protect_env: [SECRET_NAME]}
      routes:
        - {host: a.example, scheme: http, port: 8080, path_allowlist: [/v1/], methods: [GET]}
        - {host: b.example, tls_passthrough: true}
    env: {VISIBLE: "1"}
    supervise: true
agents:
  c: {bottle: dev}
"""
BOX = "┏┓┗┛┃━┳┻╋┡┩╇│─┬┴┼└┘┌┐├┤"


def _words(text: str) -> list[str]:
    return re.findall(r"[^\s" + BOX + "]+", text)


def test_plain_summary_has_every_word_of_the_rich_one(
    loaded: Callable[[str], LoadedManifest],
) -> None:
    plan = resolve(loaded(MANIFEST), "c", {"TOK": "x", "SECRET_NAME": "y"})
    console = Console(width=400, record=True)
    console.print(render_plan(plan, "namespace"))
    rich_text = console.export_text()
    plain = plain_plan(plan, "namespace")
    assert not set(BOX) & set(plain)
    # Tables are read row by row in both: the same words in the same order.
    assert _words(plain) == _words(rich_text)
    assert "http://a.example:8080  /v1/" in plain
    assert "supervise: on" in plain and "backend namespace" in plain


def test_the_summary_before_a_launch_carries_the_preflight_notes(
    loaded: Callable[[str], LoadedManifest], capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` shows what the backend notes without refusing (e.g. a microVM under TCG)
    with the summary, before the bottle starts, as `plan` and `check` do."""
    plan = resolve(loaded(MANIFEST), "c", {"TOK": "x", "SECRET_NAME": "y"})
    show_plan(
        plan, "microvm", ("TCG: no hardware acceleration (KVM does not boot the guest here)",)
    )
    err = capsys.readouterr().err
    assert err.splitlines()[-2:] == [
        "backend: microvm",
        "note: TCG: no hardware acceleration (KVM does not boot the guest here)",
    ]
