"""Fixtures for the git gate integration tests (defined in `git_gate_harness`)."""

from git_gate_harness import agent, gate, https_upstream, upstream

__all__ = ["agent", "gate", "https_upstream", "upstream"]
