"""Resolving a manifest into a `BottlePlan`, and a plan into per-launch inputs."""

from bot_bottle.plan.materialize import LaunchInputs, materialize
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.resolve import resolve

__all__ = ["BottlePlan", "LaunchInputs", "materialize", "resolve"]
