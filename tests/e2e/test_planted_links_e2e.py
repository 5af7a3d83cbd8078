"""Provisioning never follows what the agent planted, on every backend.

Run 1 (`--keep`): the agent replaces what the launcher writes into its HOME with
links to host files: a symlinked directory (`~/.aws`), symlinked files, a dangling
symlink (which would create a host file), a FIFO; the test adds a hard link to a host
file (the agent cannot make one across mounts itself) in the kept HOME on the host. Then `resume` provisions the
kept HOME again, as the launcher's user (root here). Every host file must be
byte-identical afterwards and no new file may appear beside them: the ones in a
directory outside the state dir, the ones under this test process's own `$HOME`
(a directory the test creates and removes), and, where a link resolves inside the
bottle (Docker), the ones in the mounted workspace.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from e2e_support import agent_workspace, base_env, bb, bottles, trust

pytestmark = pytest.mark.e2e

AGENT = r"""
if [ -e "$HOME/.planted" ]; then
  for f in .aws .gitconfig .bot-bottle/ca-bundle.pem .bot-bottle/egress-ca.pem \
           .bot-bottle/prompt.txt; do
    if [ -L "$HOME/$f" ] || [ -p "$HOME/$f" ]; then echo "planted: $f"; fi
  done
  echo "second run"; exit 0
fi
rm -rf "$HOME/.aws" "$HOME/.gitconfig" "$HOME/.bot-bottle"
mkdir -p "$HOME/.bot-bottle"
ln -s "$A_DIR" "$HOME/.aws"
ln -s "$B_FILE" "$HOME/.gitconfig"
ln -s "$C_FILE" "$HOME/.bot-bottle/ca-bundle.pem"
mkfifo "$HOME/.bot-bottle/egress-ca.pem"
ln -s "$E_NEW" "$HOME/.bot-bottle/prompt.txt"
touch "$HOME/.planted"
ls -la "$HOME" "$HOME/.bot-bottle"
"""


def _victims(root: Path) -> dict[Path, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "aws").mkdir(exist_ok=True)
    out = {}
    for rel in ("aws/credentials", "gitconfig", "passwd", "hard"):
        p = root / rel
        p.write_bytes(f"{rel}: host bytes {secrets.token_hex(8)}\n".encode())
        out[p] = p.read_bytes()
    return out


def _kept_home(env: dict[str, str], slug: str, backend: str) -> Path:
    """The bottle's HOME as the host sees it: in the state dir, or the Docker volume."""
    if backend in ("namespace", "microvm"):  # a microVM's HOME is a host directory too
        return Path(env["BOT_BOTTLE_HOME"]) / "bottles" / slug / "home"
    r = subprocess.run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}",
                        f"bb-{slug}-home"], capture_output=True, text=True, check=True)  # fmt: skip
    return Path(r.stdout.strip()) / "agent"


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file() and not p.is_symlink() else "dir"
        for p in sorted(root.rglob("*"))
    }  # fmt: skip


def test_resume_follows_no_planted_link(tmp_path: Path, any_backend: str) -> None:
    bottle_backend = any_backend
    env = base_env(tmp_path)
    ws = agent_workspace(tmp_path / "ws")
    outside = tmp_path / "host-files"
    # Under the real $HOME of whoever runs the tests: created here, removed below.
    real_home = Path(os.environ["HOME"]) / f".bot-bottle-e2e-victim-{secrets.token_hex(4)}"
    extra: list[Path] = []
    try:
        victims = {**_victims(outside), **_victims(real_home), **_victims(ws / "victims")}
        if bottle_backend in ("namespace", "microvm"):
            # The host paths, as the launcher on the host would resolve them (a microVM's
            # HOME is a host directory shared into the guest: links are only text there).
            targets = {"A_DIR": outside / "aws", "B_FILE": real_home / "gitconfig",
                       "C_FILE": outside / "passwd", "E_NEW": real_home / "new"}  # fmt: skip
        else:
            # In a container host paths do not exist; the workspace is the host's.
            targets = {"A_DIR": "/workspace/victims/aws", "B_FILE": "/workspace/victims/gitconfig",
                       "C_FILE": "/workspace/victims/passwd", "E_NEW": "/workspace/victims/new"}  # fmt: skip
        (ws / "agent.sh").write_text(AGENT)
        env_yaml = "".join(f"      {k}: {v}\n" for k, v in targets.items())
        (tmp_path / "bot-bottle.yaml").write_text(
            "bottles:\n  b:\n"
            "    agent_provider: {template: command, command: [sh, /workspace/agent.sh]}\n"
            f"    env:\n{env_yaml}"
            f"    workspace: {{mode: mount, path: ws}}\n    backend: {bottle_backend}\n"
            "agents:\n  a: {bottle: b, prompt: hello}\n"
        )
        trees = {d: _tree(d) for d in (outside, real_home, ws / "victims")}

        trust(env, tmp_path)
        r = bb(["run", "a", "-y", "--keep"], env, tmp_path, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        (bottle,) = bottles(env, tmp_path)
        slug = bottle["slug"]
        try:
            planted = _kept_home(env, slug, bottle_backend) / ".bot-bottle" / "prompt.txt"
            assert planted.is_symlink(), r.stdout
            planted.unlink()
            # A hard link to a host file (one on the same mount as the kept HOME).
            hard = outside / "hard"
            if bottle_backend == "docker":  # the volumes live on Docker's own mount
                hard = planted.parents[5] / f"bot-bottle-e2e-victim-{secrets.token_hex(4)}"
                hard.write_bytes(b"docker-side host file\n")
                extra.append(hard)
            os.link(hard, planted)
            r = bb(["resume", slug, "-y"], env, tmp_path, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "second run" in r.stdout + r.stderr
            assert "planted:" not in r.stdout, r.stdout  # every link was replaced
        finally:
            bb(["rm", slug], env, tmp_path)
        for path, data in victims.items():
            assert path.read_bytes() == data, path
        for path in extra:
            assert path.read_bytes() == b"docker-side host file\n"
            assert path.stat().st_nlink == 1
        for d, before in trees.items():
            assert _tree(d) == before, d
    finally:
        shutil.rmtree(real_home, ignore_errors=True)
        for path in extra:
            path.unlink(missing_ok=True)
