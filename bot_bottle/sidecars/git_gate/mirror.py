"""The bare mirror of one upstream: what the bottle clones and fetches from, and
where its pushes land (in quarantine) to be checked by the pre-receive hook.

The mirror's refs are always upstream's refs as of the last refresh or accepted
push, so `--not --all` in the mirror means "what upstream already has".
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from bot_bottle.sidecars.git_gate.config import RemoteConfig
from bot_bottle.sidecars.git_gate.git import Git

FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")

MIRROR_CONFIG = {
    # Served over smart HTTP by http-backend; pushes are decided by our hook alone.
    "http.receivepack": "true",
    "http.uploadpack": "true",
    "receive.denyDeletes": "false",
    "receive.denyNonFastForwards": "false",
    # Let the bottle fetch only what refs advertise, nothing by bare id.
    "uploadpack.allowAnySHA1InWant": "false",
    "receive.autogc": "false",
    "core.logAllRefUpdates": "false",
    # Generation numbers make "is old an ancestor of new" and "--not --all" stop at
    # the push's base instead of walking all of history: a check's cost stays flat.
    "core.commitGraph": "true",
    "fetch.writeCommitGraph": "true",
}


class Mirror:
    """One remote's bare mirror under the gate's state dir."""

    def __init__(
        self,
        root: Path,
        remote: RemoteConfig,
        env: Mapping[str, str],
        hook_args: tuple[str, ...],
    ) -> None:
        self.remote = remote
        self.path = root / f"{remote.name}.git"
        self.git = Git(self.path, env)
        self.hook_args = hook_args
        self.lock = threading.Lock()
        """Held around refreshes and pushes, so refs never move under a running check."""

    def ensure(self) -> None:
        """Create the bare repository, its config and hook (idempotent)."""
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            Git(self.path, self.git.env).run("init", "--bare", "--quiet", str(self.path))
        for key, value in MIRROR_CONFIG.items():
            self.git.run("config", key, value)
        hook = self.path / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "bot_bottle.sidecars.git_gate.hook", *self.hook_args]
        hook.write_text(f"#!/bin/sh\nexec {shlex.join(argv)}\n", encoding="utf-8")
        hook.chmod(0o755)

    def refresh(self) -> None:
        """Bring refs to upstream's state (prune what upstream deleted); raises GitFailed."""
        url = self.remote.url
        self.git.run("fetch", "--quiet", "--prune", "--no-write-fetch-head", url, *FETCH_REFSPECS)
        if self.git.ok("rev-parse", "--quiet", "--verify", "HEAD"):
            return
        # First refresh, or upstream's default branch is unknown here: ask upstream.
        head = self.git.run("ls-remote", "--symref", url, "HEAD", check=False).stdout
        for line in head.decode(errors="replace").splitlines():
            if line.startswith("ref: ") and line.endswith("\tHEAD"):
                target = line[5:].split("\t", 1)[0]
                if target.startswith("refs/heads/"):
                    self.git.run("symbolic-ref", "HEAD", target)
