"""The agent cannot change the rules it runs under (issue 9, items 1-2), on every backend.

The manifest sits in the agent's own workspace, as `bot-bottle init` puts it, with a
bottle that `extends` another, a prompt file and an upstream CA bundle beside it. The
agent tries every way to change them from inside: write, truncate, chmod, delete,
rename, a new file renamed over, a hard link, renaming their directory. All fail, and
the host files stay byte-identical. Then the operator edits them on the host: the next
`run -y` exits 2 with the diff and starts nothing; after `bot-bottle trust --yes` the
bottle runs with the new plan.
"""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest
import trustme
from e2e_support import base_env, bb, bottles, hand_over

pytestmark = pytest.mark.e2e

AGENT = r"""
import errno, json, os
W = "/workspace"
r = {}
def attempt(name, fn):
    try:
        fn()
        r[name] = "OK"
    except OSError as e:
        r[name] = "FAIL " + errno.errorcode.get(e.errno or 0, str(e.errno))
def write(p, mode):
    with open(p, mode) as f:
        f.write("agent was here\n")
def replace(p):
    write(p + ".new", "w")
    os.rename(p + ".new", p)
for name, rel in (("manifest", "bot-bottle.yaml"), ("prompt", "prompts/task.md"),
                  ("ca", "ca/extra.pem")):
    p = f"{W}/{rel}"
    attempt(f"{name} append", lambda p=p: write(p, "a"))
    attempt(f"{name} truncate", lambda p=p: os.truncate(p, 0))
    attempt(f"{name} chmod", lambda p=p: os.chmod(p, 0o666))
    attempt(f"{name} unlink", lambda p=p: os.unlink(p))
    attempt(f"{name} rename away", lambda p=p: os.rename(p, p + ".old"))
    attempt(f"{name} rename over", lambda p=p: replace(p))
    attempt(f"{name} hard link", lambda p=p: os.link(p, p + ".link"))
for d in ("prompts", "ca"):
    attempt(f"dir {d} rename", lambda d=d: os.rename(f"{W}/{d}", f"{W}/{d}.old"))
attempt("workspace scratch write", lambda: write(f"{W}/out/scratch.txt", "w"))
r["MARK"] = os.environ.get("MARK", "")
r["prompt"] = open(os.path.expandvars(os.environ["BOT_BOTTLE_PROMPT_FILE"])).read()
with open(f"{W}/out/runs.log", "a") as f:
    f.write(json.dumps(r) + "\n")
"""

MANIFEST = """\
bottles:
  base:
    agent_provider: {{template: command, command: [python3, /workspace/agent.py]}}
    env: {{MARK: v1}}
    egress: {{upstream_ca: ca/extra.pem}}
    workspace: {{mode: mount, path: .}}
    backend: {backend}
  b:
    extends: base
agents:
  probe: {{bottle: b, prompt_file: prompts/task.md}}
"""


def workspace(tmp: Path, backend: str) -> Path:
    ws = tmp / "ws"
    for d in ("prompts", "ca", "out"):
        (ws / d).mkdir(parents=True)
    (ws / "out").chmod(0o777)
    (ws / "agent.py").write_text(AGENT)
    (ws / "bot-bottle.yaml").write_text(MANIFEST.format(backend=backend))
    (ws / "prompts" / "task.md").write_text("the approved task\n")
    trustme.CA().cert_pem.write_to_path(str(ws / "ca" / "extra.pem"))
    hand_over(ws)
    return ws


def runs(ws: Path) -> list[dict[str, str]]:
    log = ws / "out" / "runs.log"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def snapshot(ws: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(ws)): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and "out" not in p.parts
    }


def refused(ws: Path, env: dict[str, str], *expected: str) -> None:
    """`run -y` stops with exit 2, shows the changes and the fix, and starts nothing."""
    before = len(runs(ws))
    r = bb(["run", "probe", "-y"], env, ws, timeout=180)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "changed since approval" in r.stderr, r.stderr
    assert f"bot-bottle trust -f {ws / 'bot-bottle.yaml'}" in r.stderr, r.stderr
    for text in expected:
        assert text in r.stderr, (text, r.stderr)
    assert len(runs(ws)) == before, "a refused launch started the agent"
    assert bottles(env, ws) == []


def test_agent_cannot_change_its_rules(tmp_path: Path, bottle_backend: str) -> None:
    ws = workspace(tmp_path, bottle_backend)
    env = base_env(tmp_path)
    host_files = snapshot(ws)

    r = bb(["run", "probe", "-y"], env, ws, timeout=180)
    assert r.returncode == 2 and "never been approved" in r.stderr, r.stderr
    assert "bot-bottle trust -f" in r.stderr and runs(ws) == []

    assert bb(["trust", "--yes"], env, ws).returncode == 0
    r = bb(["run", "probe", "-y"], env, ws, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "read-only in the bottle (the launch read them): bot-bottle.yaml" in r.stderr
    (result,) = runs(ws)
    assert result.pop("workspace scratch write") == "OK", result
    assert result.pop("MARK") == "v1" and result.pop("prompt") == "the approved task\n"
    got_through = {k: v for k, v in result.items() if not v.startswith("FAIL")}
    assert got_through == {}, result
    # (The agent's `.new` files beside them are its own; the originals are untouched.)
    now = snapshot(ws)
    assert {k: now.get(k) for k in host_files} == host_files, "a file the launch read changed"

    # The operator edits the parent bottle of the `extends` chain on the host.
    manifest = ws / "bot-bottle.yaml"
    manifest.write_text(
        manifest.read_text().replace("env: {MARK: v1}", "env: {MARK: v2, LEAK: {from_host: HOME}}")
    )
    refused(ws, env, "- env MARK: = v1", "+ env MARK: = v2", "+ env LEAK: from host $HOME")
    assert bb(["trust", "--yes", "-f", str(manifest)], env, tmp_path).returncode == 0
    r = bb(["run", "probe", "-y"], env, ws, timeout=180)
    assert r.returncode == 0, r.stderr
    assert runs(ws)[-1]["MARK"] == "v2"

    # ... and, separately, the prompt file.
    (ws / "prompts" / "task.md").write_text("a new task\n")
    refused(ws, env, "- prompt:", "+ prompt:")
    assert bb(["trust", "--yes"], env, ws).returncode == 0
    r = bb(["run", "probe", "-y", "--keep"], env, ws, timeout=180)
    assert r.returncode == 0, r.stderr
    assert runs(ws)[-1]["prompt"] == "a new task\n"

    # The approval survives into `resume`, and `ls` shows it ...
    (kept,) = bottles(env, ws)
    assert kept["approval"] == "approved", kept
    r = bb(["resume", kept["slug"], "-y"], env, ws, timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(runs(ws)) == 4
    # ... and a host edit after it is refused there too.
    manifest.write_text(manifest.read_text().replace("MARK: v2", "MARK: v3"))
    assert bottles(env, ws)[0]["approval"] == "changed"
    r = bb(["resume", kept["slug"], "-y"], env, ws, timeout=180)
    assert r.returncode == 2 and "+ env MARK: = v3" in r.stderr, r.stderr
    assert len(runs(ws)) == 4
    # Approved again, now with another file to protect: a kept Docker container's
    # mounts are fixed, so it refuses to resume; a namespace bottle binds it anew.
    (ws / "prompts" / "next.md").write_text("a new task\n")
    manifest.write_text(manifest.read_text().replace("task.md", "next.md"))
    assert bb(["trust", "--yes"], env, ws).returncode == 0
    r = bb(["resume", kept["slug"], "-y"], env, ws, timeout=180)
    if bottle_backend == "docker":
        assert r.returncode == 2 and "/workspace/prompts/next.md" in r.stderr, r.stderr
        assert len(runs(ws)) == 4
    else:
        assert r.returncode == 0, r.stderr
        assert runs(ws)[-1]["prompt"] == "a new task\n"
    assert bb(["rm", kept["slug"]], env, ws).returncode == 0


def converse(args: list[str], env: dict[str, str], cwd: Path, question: str, answer: str
             ) -> tuple[int, str]:  # fmt: skip
    """Run bot-bottle on a terminal (a pty), answer `question`, return (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: bot-bottle with the pty as its terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "bot_bottle", *args], env)
    out, answered, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if not answered and question.encode() in out:
                os.write(fd, answer.encode() + b"\n")
                answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_on_a_terminal_y_is_the_approval(tmp_path: Path, bwrap_ok: None) -> None:
    ws = workspace(tmp_path, "namespace")
    env = base_env(tmp_path)
    question = "Approve this configuration and start the bottle?"
    rc, out = converse(["run", "probe"], env, ws, question, "n")
    assert rc == 1 and question in out and "NOT APPROVED" in out, out
    assert "not started" in out, out  # declining says so (it used to exit 1 silently)
    assert runs(ws) == []
    assert bb(["run", "probe", "-y"], env, ws).returncode == 2  # "n" approved nothing

    rc, out = converse(["run", "probe"], env, ws, question, "y")
    assert rc == 0, out
    assert len(runs(ws)) == 1
    r = bb(["run", "probe", "-y"], env, ws, timeout=180)  # recorded by the "y"
    assert r.returncode == 0 and "approval: approved" in r.stderr, r.stderr
