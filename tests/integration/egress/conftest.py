"""Fixtures for the egress integration tests (defined in egress_harness)."""

from egress_harness import egress, make_egress, upstream

__all__ = ["egress", "make_egress", "upstream"]
