"""Where every `bot-bottle` subcommand is registered: name -> ("module:attribute", help).

Modules are imported only when their command runs; the one-line help lives here so
`bot-bottle --help` imports none of them (mitmproxy alone takes ~0.7 s to import).
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("bot_bottle.cli.manifest_cmds:init", "Write a commented starter manifest."),
    "check": ("bot_bottle.cli.manifest_cmds:check", "Validate the manifest; print each agent's plan."),
    "schema": ("bot_bottle.cli.manifest_cmds:schema", "Print the manifest's JSON Schema."),
    "plan": ("bot_bottle.cli.manifest_cmds:plan", "Show the preflight summary for an agent."),
    "doctor": ("bot_bottle.cli.doctor_cmd:doctor", "Which backends can run here, and what is missing."),
    "version": ("bot_bottle.cli.manifest_cmds:version", "Print bot-bottle's version."),
    "trust": ("bot_bottle.cli.trust_cmd:trust", "Approve the manifest's configuration for -y runs."),
    "run": ("bot_bottle.cli.bottle_cmds:run", "Start an agent in a new bottle."),
    "resume": ("bot_bottle.cli.bottle_cmds:resume", "Restart a kept bottle."),
    "ls": ("bot_bottle.cli.bottle_cmds:ls", "List bottles and their status."),
    "info": ("bot_bottle.cli.bottle_cmds:info", "Show one bottle's details."),
    "exec": ("bot_bottle.cli.exec_cmd:exec_", "Open a shell or run a command in a running bottle."),
    "stop": ("bot_bottle.cli.bottle_cmds:stop", "Stop a bottle, keeping its state."),
    "rm": ("bot_bottle.cli.bottle_cmds:rm", "Remove a bottle and its state."),
    "requests": ("bot_bottle.cli.supervise_cmds:requests", "List what agents asked their operator."),
    "grant": ("bot_bottle.cli.supervise_cmds:grant", "Grant an agent's request (a route goes live)."),
    "deny": ("bot_bottle.cli.supervise_cmds:deny", "Deny an agent's request, with a reason."),
    "watch": ("bot_bottle.cli.watch_cmd:watch", "Live view of bottles and requests; grant or deny with keys."),
    "logs": ("bot_bottle.cli.egress_cmds:logs", "Show a bottle's audit log (egress and pushes)."),
    "suggest": ("bot_bottle.cli.suggest_cmd:suggest_cmd", "Print routes (YAML) for what a bottle was denied."),
    "agents": ("bot_bottle.cli.bottle_cmds:agents", "Install, list, or run on the host (to log in) the agent CLIs."),
    "images": ("bot_bottle.cli.image_cmds:images", "Bootstrap and build the Docker images."),
    "gc": ("bot_bottle.cli.image_cmds:gc", "Remove what crashed launches left behind."),
    "egress": ("bot_bottle.cli.egress_cmds:egress", "The egress sidecar (used by backends)."),
    "git-gate": ("bot_bottle.cli.git_gate_cmds:git_gate", "The git gate sidecar (used by backends)."),
}  # fmt: skip
