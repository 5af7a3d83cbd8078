"""bot-bottle: run AI coding agents in sandboxes whose only ways out you control."""

__version__ = "0.1.0"
