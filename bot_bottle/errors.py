"""Errors a user can cause. Each prints as one message with the fix; exit code 2.

A traceback escaping the CLI means a bug in bot-bottle, never bad input.
"""

from __future__ import annotations


class BotBottleError(Exception):
    """Base of every user-facing error: a message and, where one exists, the fix."""

    exit_code = 2

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class ManifestError(BotBottleError):
    """The manifest is unreadable or invalid; `path` names the field (`bottles.dev.env`)."""

    def __init__(self, message: str, path: str = "", fix: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message, fix)


class ManifestErrors(ManifestError):
    """Every problem found in a manifest, reported together: a user who fixes one
    should not meet the next on the following run."""

    def __init__(self, errors: list[ManifestError], source: str = "the manifest") -> None:
        self.errors = tuple(errors)
        lines = [f"  - {e.message}" + (f"\n    fix: {e.fix}" if e.fix else "") for e in errors]
        super().__init__(f"{len(errors)} problems in {source}:\n" + "\n".join(lines))
        self.path = self.errors[0].path if self.errors else ""  # the first one's field


def raise_all(errors: list[ManifestError], source: str = "the manifest") -> None:
    """Raise the one error as it is, several as one `ManifestErrors` (each message once,
    groups flattened); none: return."""
    flat: list[ManifestError] = []
    for e in errors:
        for one in e.errors if isinstance(e, ManifestErrors) else (e,):
            if all(one.message != seen.message for seen in flat):
                flat.append(one)
    errors = flat
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors, source)


class CredentialError(BotBottleError):
    """A credential the plan needs is missing or unusable on the host."""


class BackendUnavailable(BotBottleError):
    """The chosen backend cannot run on this host."""


class StateError(BotBottleError):
    """A bottle slug is unknown, locked, or its state is damaged."""


class DamagedState(StateError):
    """A state file bot-bottle wrote cannot be read back (truncated, not JSON, not the
    shape written): `path` names it, and the message says how to recover."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        super().__init__(f"{path} is damaged ({problem})", fix)


class UnsafeWorkspace(BotBottleError):
    """The workspace cannot be given to an agent without handing it root's files."""
