"""Fixtures for the namespace escape tests (defined in `ns_harness`)."""

from ns_harness import bottle, namespaces_work

__all__ = ["bottle", "namespaces_work"]
