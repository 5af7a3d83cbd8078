"""Where every `bot-bottle` subcommand is registered: name -> "module:attribute".

Modules are imported only when their command runs, so `bot-bottle --help` and
light commands stay fast (mitmproxy alone takes ~0.7 s to import).
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    # foundation
    "init": "bot_bottle.cli.manifest_cmds:init",
    "check": "bot_bottle.cli.manifest_cmds:check",
    "schema": "bot_bottle.cli.manifest_cmds:schema",
    "plan": "bot_bottle.cli.manifest_cmds:plan",
    "doctor": "bot_bottle.cli.doctor_cmd:doctor",
    "version": "bot_bottle.cli.manifest_cmds:version",
    "egress": "bot_bottle.cli.egress_cmds:egress",
    "logs": "bot_bottle.cli.egress_cmds:logs",
    "images": "bot_bottle.cli.image_cmds:images",
    "gc": "bot_bottle.cli.image_cmds:gc",
    # bottles (namespace backend owner)
    "run": "bot_bottle.cli.bottle_cmds:run",
    "resume": "bot_bottle.cli.bottle_cmds:resume",
    "ls": "bot_bottle.cli.bottle_cmds:ls",
    "info": "bot_bottle.cli.bottle_cmds:info",
    "stop": "bot_bottle.cli.bottle_cmds:stop",
    "rm": "bot_bottle.cli.bottle_cmds:rm",
    "agents": "bot_bottle.cli.bottle_cmds:agents",
    "git-gate": "bot_bottle.cli.git_gate_cmds:git_gate",
}
