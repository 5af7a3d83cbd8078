"""What a bottle with `supervise: true` gives its agent to ask the operator with.

The program `bot-bottle-ask` (`bot_bottle/ask_tool.py`, stdlib only, run by the
bottle's python3) lands in `TOOLS_BIN`, which is on every bottle's PATH; it is both a
command for any agent and, as `bot-bottle-ask mcp`, an MCP server the provider
registers with its agent (Claude Code, Codex). A note appended to the agent's prompt
says they exist and when to use them. None of it is a privilege: every answer comes
from the operator, through the bottle's own egress.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from bot_bottle.plan.environment import PROXY_VARIABLES, TOOLS_BIN
from bot_bottle.providers.base import McpServer, Provider, ProvisionFile

COMMAND = "bot-bottle-ask"
MCP_SERVER = McpServer(
    name="supervise",
    command=COMMAND,
    args=("mcp",),
    tools=("request_route", "ask_operator", "check_request"),
    env_vars=PROXY_VARIABLES,  # it reaches the endpoint through the bottle's egress
)

PROMPT_NOTE = f"""\
This bottle is supervised. Its network reaches only the destinations its operator
allowed; a refused request gets HTTP 403 from the bottle's egress, naming the rule.
When the task needs a destination that was refused, do not work around it: ask the
operator. Use the `request_route` tool (MCP server `{MCP_SERVER.name}`) if you have it,
or run `{COMMAND} route HOST[:PORT] [PATH] --method GET --reason "why the task needs it"`.
Either waits for the operator's answer; once granted, retry the request. If your
shell gives up first, the request stays open: `{COMMAND} wait ID` picks it up. Ask for
the narrowest path prefix and methods you need. For a decision only a human can make, use
the `ask_operator` tool or `{COMMAND} question "..."`. `{COMMAND} --help` says more."""


def program() -> ProvisionFile:
    """The `bot-bottle-ask` program, placed executable on the bottle's PATH."""
    source = resources.files("bot_bottle").joinpath("ask_tool.py").read_bytes()
    return ProvisionFile(f"{TOOLS_BIN}/{COMMAND}", source, 0o755)


def with_note(prompt: str) -> str:
    """The agent's prompt with the supervise note after it."""
    return f"{prompt.rstrip()}\n\n{PROMPT_NOTE}" if prompt.strip() else PROMPT_NOTE


@dataclass(frozen=True)
class Kit:
    """What supervise adds to an agent: its prompt (with the note), files (the program,
    the provider's MCP config) and leading command-line arguments (MCP config flags)."""

    prompt: str
    files: tuple[ProvisionFile, ...] = ()
    args: tuple[str, ...] = ()


def kit(provider: Provider, prompt: str, supervised: bool) -> Kit:
    """The agent's kit; without supervise, its prompt unchanged and nothing else."""
    if not supervised:
        return Kit(prompt)
    wiring = provider.mcp((MCP_SERVER,))
    return Kit(with_note(prompt), (*wiring.files, program()), wiring.args)
