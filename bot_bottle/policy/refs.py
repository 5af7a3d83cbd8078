"""Ref rules for pushes through the git gate: which refs the agent may update, and
which refs are protected from force-push and deletion.

Pure: whether an update is a fast-forward is a git question, answered by the caller
and passed in as `fast_forward`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.globs import compile_glob, glob_match

DEFAULT_ALLOWED_REFS = ("refs/heads/**", "refs/tags/**")
"""Without `allowed_refs` the agent may push branches and tags, nothing else (no
`refs/notes`, `refs/meta/config`, `refs/pull/...`)."""


def is_zero_oid(oid: str) -> bool:
    """Git's null object id (SHA-1 or SHA-256 length) marks a created or deleted ref."""
    return bool(oid) and set(oid) == {"0"}


def normalize_ref_pattern(pattern: str) -> str:
    """`main` and `agent/*` mean branches; a pattern starting with `refs/` is taken as is."""
    pattern = pattern.strip()
    if not pattern:
        raise ValueError("empty ref pattern")
    if pattern.startswith("refs/"):
        return pattern
    return "refs/heads/" + pattern


@dataclass(frozen=True)
class RefUpdate:
    """One line of a push: `ref` moves from `old` to `new` (null ids for create/delete)."""

    ref: str
    old: str
    new: str

    @property
    def created(self) -> bool:
        return is_zero_oid(self.old)

    @property
    def deleted(self) -> bool:
        return is_zero_oid(self.new)

    @classmethod
    def parse(cls, line: str) -> RefUpdate:
        """Parse one `<old> <new> <ref>` line as a pre-receive hook reads it."""
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"bad ref update line: {line!r}")
        old, new, ref = parts
        return cls(ref=ref, old=old, new=new)


@dataclass(frozen=True)
class RefRules:
    """Normalized `protected_refs` and `allowed_refs` for one remote."""

    protected: tuple[str, ...] = ()
    allowed: tuple[str, ...] = DEFAULT_ALLOWED_REFS

    @classmethod
    def from_patterns(cls, protected: Iterable[str], allowed: Iterable[str]) -> RefRules:
        """Normalize and validate; raises `ValueError` for an empty pattern."""
        prot = tuple(normalize_ref_pattern(p) for p in protected)
        allow = tuple(normalize_ref_pattern(p) for p in allowed) or DEFAULT_ALLOWED_REFS
        for p in (*prot, *allow):
            compile_glob(p)
        return cls(protected=prot, allowed=allow)

    def is_protected(self, ref: str) -> bool:
        return any(glob_match(p, ref) for p in self.protected)

    def is_allowed(self, ref: str) -> bool:
        return any(glob_match(p, ref) for p in self.allowed)


def check_ref_update(update: RefUpdate, rules: RefRules, *, fast_forward: bool) -> Decision:
    """Decide one ref update. `fast_forward` is whether `new` descends from `old`
    (ignored for creations and deletions)."""
    ref = update.ref
    # A name outside refs/ (HEAD, a bare branch name) would let the agent repoint
    # what upstream considers the default branch; git itself rejects most of these.
    if not ref.startswith("refs/") or ".." in ref or "//" in ref:
        return Decision.denied("git-ref-invalid", f"{ref}: not a valid ref name to push")
    if not rules.is_allowed(ref):
        return Decision.denied(
            "git-ref-not-allowed",
            f"{ref}: not in allowed_refs ({', '.join(rules.allowed)})",
            hint=f"add {ref!r} (or a pattern) to git.remotes[].allowed_refs",
        )
    if rules.is_protected(ref):
        if update.deleted:
            return Decision.denied("git-protected-delete", f"{ref}: protected, cannot be deleted")
        if not update.created and not fast_forward:
            return Decision.denied(
                "git-protected-force",
                f"{ref}: protected, force-push (non-fast-forward) refused",
                hint="fetch, rebase or merge onto the remote branch, then push without --force",
            )
    return Decision.allowed("git-push")
