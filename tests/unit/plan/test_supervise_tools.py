"""What `supervise: true` gives the agent at plan time: the `bot-bottle-ask` program on
its PATH, the note in its prompt, and the MCP server registered the provider's way.
Without supervise, none of it."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable

import pytest

from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.environment import TOOLS_BIN, bottle_env
from bot_bottle.plan.resolver import resolve
from bot_bottle.plan.supervise_tools import COMMAND, PROMPT_NOTE

Loader = Callable[[str], LoadedManifest]
PROGRAM = f"{TOOLS_BIN}/{COMMAND}"


def manifest(template: str, supervise: bool, prompt: str = "do the task") -> str:
    provider = {"claude": "{template: claude, auth_token: T}", "codex": "{template: codex}",
                "command": "{template: command, command: [sh]}"}[template]  # fmt: skip
    return (f"bottles: {{b: {{agent_provider: {provider}, supervise: {str(supervise).lower()}}}}}\n"
            f"agents: {{a: {{bottle: b, prompt: {prompt!r}}}}}")  # fmt: skip


@pytest.mark.parametrize("template", ["claude", "codex", "command"])
def test_without_supervise_the_agent_gets_nothing(loaded: Loader, template: str) -> None:
    plan = resolve(loaded(manifest(template, False)), "a", {})
    assert PROGRAM not in {f.path for f in plan.files}
    assert not any("supervise" in a or "bot-bottle-ask" in a for a in plan.argv)
    assert not any(b"mcpServers" in f.content or b"bot-bottle-ask" in f.content for f in plan.files)


@pytest.mark.parametrize("template", ["claude", "codex", "command"])
def test_the_program_lands_executable_and_stdlib_only(loaded: Loader, template: str) -> None:
    plan = resolve(loaded(manifest(template, True)), "a", {})
    (prog,) = [f for f in plan.files if f.path == PROGRAM]
    assert prog.mode == 0o755 and prog.content.startswith(b"#!/usr/bin/env python3\n")
    imported = set()
    for node in ast.walk(ast.parse(prog.content)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "argparse", "json", "sys", "threading", "time",
                        "urllib", "typing"}, imported  # fmt: skip


def test_claude_is_told_and_gets_the_mcp_server(loaded: Loader) -> None:
    plan = resolve(loaded(manifest("claude", True)), "a", {})
    prompt = plan.argv[plan.argv.index("--append-system-prompt") + 1]
    assert prompt.startswith("do the task\n\n") and prompt.endswith(PROMPT_NOTE)
    configs = [json.loads(f.content) for f in plan.files if f.path == "~/.claude.json"]
    servers = [c["mcpServers"] for c in configs if "mcpServers" in c]
    assert servers == [{"supervise": {"type": "stdio", "command": "bot-bottle-ask",
                                      "args": ["mcp"], "env": {}, "alwaysLoad": True}}]  # fmt: skip
    (settings,) = [f for f in plan.files if f.path == "~/.claude/settings.json"]
    assert settings.merge_json
    allow = json.loads(settings.content)["permissions"]["allow"]
    assert "mcp__supervise__request_route" in allow and "mcp__supervise__ask_operator" in allow
    # The approved digest is the operator's prompt, not the note bot-bottle adds.
    bare = resolve(loaded(manifest("claude", False)), "a", {})
    assert plan.prompt_digest == bare.prompt_digest


def test_codex_gets_the_server_as_config_overrides(loaded: Loader) -> None:
    plan = resolve(loaded(manifest("codex", True)), "a", {})
    pairs = [plan.argv[i + 1] for i, a in enumerate(plan.argv) if a == "-c"]
    assert 'mcp_servers.supervise.command="bot-bottle-ask"' in pairs
    assert 'mcp_servers.supervise.args=["mcp"]' in pairs
    assert "mcp_servers.supervise.tool_timeout_sec=3600" in pairs
    assert 'mcp_servers.supervise.default_tools_approval_mode="approve"' in pairs
    (env_vars,) = [p for p in pairs if p.startswith("mcp_servers.supervise.env_vars=")]
    assert {"HTTP_PROXY", "http_proxy"} <= set(json.loads(env_vars.partition("=")[2]))
    (agents_md,) = [f for f in plan.files if f.path == "~/.codex/AGENTS.md"]
    assert agents_md.content.decode().endswith(PROMPT_NOTE)


def test_a_command_agent_reads_the_note_without_a_prompt(loaded: Loader) -> None:
    text = manifest("command", True).replace(", prompt: 'do the task'", "")
    plan = resolve(loaded(text), "a", {})
    (prompt,) = [f for f in plan.files if f.path == "~/.bot-bottle/prompt.txt"]
    assert prompt.content.decode() == PROMPT_NOTE


def test_the_tools_directory_ends_the_path() -> None:
    env = bottle_env({}, home="/home/agent", proxy_port=1, base={"PATH": "/usr/bin:/bin"})
    assert env["PATH"] == "/usr/bin:/bin:/home/agent/.bot-bottle/bin"
    assert "PATH" not in bottle_env({}, home="/home/agent", proxy_port=1)
