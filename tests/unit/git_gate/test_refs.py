"""Ref rules: allowed_refs patterns, protected refs refuse deletion and force-push."""

from __future__ import annotations

import pytest

from bot_bottle.policy.globs import glob_match
from bot_bottle.policy.refs import RefRules, RefUpdate, check_ref_update, normalize_ref_pattern

A = "a" * 40
B = "b" * 40
Z = "0" * 40

RULES = RefRules.from_patterns(
    protected=["main", "refs/tags/v*"], allowed=["main", "agent/**", "refs/tags/*"]
)


@pytest.mark.parametrize(
    ("ref", "old", "new", "ff", "allow", "rule"),
    [
        ("refs/heads/main", A, B, True, True, "git-push"),
        ("refs/heads/main", A, B, False, False, "git-protected-force"),
        ("refs/heads/main", A, Z, True, False, "git-protected-delete"),
        ("refs/heads/main", Z, B, False, True, "git-push"),  # creation is never a force
        ("refs/heads/agent/x", A, B, False, True, "git-push"),  # unprotected force is fine
        ("refs/heads/agent/x/y", A, Z, True, True, "git-push"),
        ("refs/heads/other", Z, B, True, False, "git-ref-not-allowed"),
        ("refs/heads/agentx", Z, B, True, False, "git-ref-not-allowed"),
        ("refs/tags/v1", A, B, False, False, "git-protected-force"),
        ("refs/tags/v1", A, Z, True, False, "git-protected-delete"),
        ("refs/tags/x", Z, B, True, True, "git-push"),
        ("refs/tags/a/b", Z, B, True, False, "git-ref-not-allowed"),
        ("refs/notes/commits", Z, B, True, False, "git-ref-not-allowed"),
        ("HEAD", A, B, True, False, "git-ref-invalid"),
        ("refs/heads/agent/../main", A, B, True, False, "git-ref-invalid"),
    ],
)
def test_check_ref_update(ref: str, old: str, new: str, ff: bool, allow: bool, rule: str) -> None:
    d = check_ref_update(RefUpdate(ref, old, new), RULES, fast_forward=ff)
    assert (d.allow, d.rule) == (allow, rule)
    if not allow:
        assert ref in d.reason


def test_default_allowed_refs_are_branches_and_tags() -> None:
    rules = RefRules.from_patterns([], [])
    assert rules.is_allowed("refs/heads/a/b")
    assert rules.is_allowed("refs/tags/v1")
    assert not rules.is_allowed("refs/meta/config")


@pytest.mark.parametrize(
    ("pattern", "name", "match"),
    [
        ("refs/heads/*", "refs/heads/a", True),
        ("refs/heads/*", "refs/heads/a/b", False),
        ("refs/heads/**", "refs/heads/a/b", True),
        ("docs/**/*.md", "docs/a.md", True),
        ("docs/**/*.md", "docs/x/y/a.md", True),
        ("docs/**/*.md", "src/a.md", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a.c", "abc", False),
    ],
)
def test_glob(pattern: str, name: str, match: bool) -> None:
    assert glob_match(pattern, name) is match


@pytest.mark.parametrize(
    ("pattern", "out"),
    [("main", "refs/heads/main"), ("refs/tags/*", "refs/tags/*"), (" x ", "refs/heads/x")],
)
def test_normalize(pattern: str, out: str) -> None:
    assert normalize_ref_pattern(pattern) == out


@pytest.mark.parametrize("bad", ["", "a b", "a b c d"])
def test_parse_rejects_bad_lines(bad: str) -> None:
    with pytest.raises(ValueError):
        RefUpdate.parse(bad)


def test_parse() -> None:
    u = RefUpdate.parse(f"{Z} {B} refs/heads/x\n")
    assert u.created and not u.deleted and u.ref == "refs/heads/x"
