#!/usr/bin/env python3
"""Writes docs/getting-started.md by running a first session for real, so the page can
never drift from the code: `init`, `check`, `trust`, `run` (a denial), `ls`, `logs
--last --denied`, `stop` from a second terminal, `resume`, `rm`, `ls --all`.

    python scripts/getting_started.py           # rewrite the page
    python scripts/getting_started.py --check   # exit 1 with a diff if the page differs

It runs in a throwaway HOME on the namespace backend with a `command` agent (a shell
script), so it needs bubblewrap and takes a few seconds; nothing leaves loopback (the
manifest allows no host). What changes from run to run (slugs, times, the temporary
HOME) is normalized before the page is written or compared. CI runs `--check`
(tests/e2e/test_getting_started.py).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "getting-started.md"
AGENT = "hello"
SLUG = f"{AGENT}-moss-3c1e"  # what every real slug reads as (no real one is shorter)
# A root launcher runs the agent as the workspace's owner and refuses a root-owned one
# (docs/security.md): as root, the project goes to an ordinary user, as it would be.
PROJECT_UID = 1000

MANIFEST = f"""\
bottles:
  hello:
    agent_provider:
      template: command           # any program; claude and codex are templates too
      command:
        - sh
        - -c
        - |
          if [ -e ~/.visited ]; then echo "welcome back: HOME was kept"; exit 0; fi
          touch ~/.visited
          echo "inside the bottle as $(id -un), in $(pwd): $(ls)"
          ls ~/.ssh 2>/dev/null || echo "no ~/.ssh here"
          curl -sS --max-time 10 http://example.test/ || true
          echo "working; stop me with bot-bottle stop"
          exec sleep 600
    egress:
      routes: []                  # nothing is reachable: every request gets a 403
    workspace: mount              # this directory, read-write
    backend: namespace
agents:
  {AGENT}:
    bottle: hello
"""

INTRO = """\
# Getting started

A first session with bot-bottle, command by command, as it really runs: this page is
written by `scripts/getting_started.py`, which runs every command below on the
namespace backend, and CI fails when the page and the program disagree. Slugs, times
and paths are normalized (your slug will be another `hello-WORD-HEX`).

The agent here is a shell script (`template: command`), so the session needs no
credentials and no agent CLI; with `template: claude` or `codex` everything works the
same, with the real agent in the bottle.
"""


@dataclass
class Session:
    """Runs `bot-bottle` in a throwaway HOME and collects the page, chunk by chunk."""

    home: Path
    project: Path
    chunks: list[str] = field(default_factory=list)
    slugs: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "LANG": "C.UTF-8", "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1",
                "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip

    def say(self, text: str) -> None:
        self.chunks.append(text.strip() + "\n")

    def block(self, text: str, lang: str = "console") -> None:
        self.chunks.append(f"```{lang}\n{self.normalize(text).rstrip()}\n```\n")

    def argv(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "bot_bottle", *args]

    def run(self, args: list[str], *, title: str = "") -> str:
        """One command, its output (stdout and stderr, interleaved as printed)."""
        r = subprocess.run(self.argv(args), env=self.env, cwd=self.project, text=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300, check=False)  # fmt: skip
        self._learn(r.stdout)
        shown = self.command_line(args, title) + r.stdout
        if r.returncode != 0:
            shown += f"(exit code {r.returncode})\n"
        self.block(shown)
        return r.stdout

    def command_line(self, args: list[str], title: str = "") -> str:
        head = f"# {title}\n" if title else ""
        return head + "$ bot-bottle " + " ".join(args) + "\n"

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        """A command left running, as in another terminal; its output goes to `log`."""
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(args), env=self.env, cwd=self.project,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)  # fmt: skip

    def _learn(self, text: str) -> None:
        for slug in re.findall(rf"\b{AGENT}-[a-z]+-[0-9a-f]{{4}}\b", text):
            if slug not in self.slugs:
                self.slugs.append(slug)

    def normalize(self, text: str) -> str:
        for slug in self.slugs:
            # In a table cell, pad to the real slug's width: the borders stay aligned.
            lines = [
                re.sub(rf"{slug}( *)", lambda m: SLUG.ljust(len(m.group(0))), ln)
                if "│" in ln
                else ln.replace(slug, SLUG)
                for ln in text.split("\n")
            ]
            text = "\n".join(lines)
        text = text.replace(str(self.home), "~")
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?",
                      "2026-01-01T12:00:00+00:00", text)  # fmt: skip
        text = re.sub(r"\b\d\d:\d\d:\d\d\.\d{3}\b", "12:00:00.000", text)
        return "\n".join(ln.rstrip() for ln in text.split("\n"))

    def wait_for(self, log: Path, text: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while text not in log.read_text(errors="replace"):
            if time.monotonic() > end:
                raise SystemExit(f"never saw {text!r} in:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)


def session(s: Session) -> None:
    """The tour. Each step is one `s.run` (a command and its output) after its prose."""
    s.say("## Write a manifest\n\n`init` writes a commented starter manifest for Claude:")
    s.run(["init"])
    s.say("For this tour, replace it with a bottle whose agent is a shell script:")
    (s.project / "bot-bottle.yaml").write_text(MANIFEST)
    s.block(MANIFEST, "yaml")
    s.say("## Check and approve it")
    s.run(["check"])
    s.say(
        "`run` on a terminal shows the preflight summary and asks before it starts; "
        "answering `y` approves this configuration. Unattended launches (`-y`, no "
        "terminal) start only an approved one, so approve it first with `trust`:"
    )
    s.run(["trust", "--yes"])
    s.say(
        "## Run it\n\nIn a first terminal, start the agent, kept after it ends "
        "(`--keep`) so that it can be resumed. The slug it prints names the bottle "
        "for every other command. The agent asks for `example.test`, which the "
        "manifest does not allow:"
    )
    log = s.home / "terminal-1.log"
    run_args = ["run", AGENT, "-y", "--keep"]
    first = s.start(run_args, log)
    s.wait_for(log, "working; stop me")
    s._learn(log.read_text())
    s.block(s.command_line(run_args, "terminal 1") + log.read_text() + "...\n")
    s.say(
        "## Look at it from another terminal\n\n`logs --last` is the last bottle "
        "started from this directory's manifest (or give its slug); `--denied` shows "
        "only refusals, each with the rule and how to allow it:"
    )
    s.run(["ls"], title="terminal 2")
    s.run(["logs", "--last", "--denied"], title="terminal 2")
    slug = s.slugs[0]
    s.run(["exec", slug, "--", "ls", "/workspace"], title="terminal 2")
    s.say(
        "## Stop it\n\n`stop` ends the bottle from the second terminal; the first gets "
        "its terminal back as it was, told why the bottle ended:"
    )
    s.run(["stop", slug], title="terminal 2")
    first.wait(timeout=60)
    s.block(s.command_line(run_args, "terminal 1") + log.read_text() + f"$ echo $?\n"
            f"{first.returncode}\n")  # fmt: skip
    s.say(
        "## Resume it\n\nA kept bottle starts again with the same HOME and workspace "
        "and fresh sidecars, from any directory; an unattended `resume` refuses a "
        "configuration changed since it was approved, as `run -y` does:"
    )
    s.run(["resume", slug, "-y"])
    s.say(
        "## Clean up\n\n`rm` deletes the bottle; its audit log remains, and `ls --all` "
        "still lists it (`bot-bottle logs SLUG` reads it):"
    )
    s.run(["rm", slug])
    s.run(["ls", "--all"])


def produce() -> str:
    # Always this long, wherever TMPDIR points: rich wraps lines that hold the path.
    tmp = Path(tempfile.mkdtemp(prefix="bb-getting-started-", dir="/tmp")).resolve()
    try:
        project = tmp / "project"
        project.mkdir()
        os.chmod(tmp, 0o755)  # the project's owner must reach it
        s = Session(tmp, project)
        if os.geteuid() == 0:
            os.chown(project, PROJECT_UID, PROJECT_UID)
        try:
            session(s)
        finally:
            if s.slugs:  # whatever failed, no bottle outlives the run
                subprocess.run(s.argv(["rm", *s.slugs]), env=s.env, cwd=project,
                               capture_output=True, check=False)  # fmt: skip
            # Nor the egress helper the first run started (its state dir goes next).
            subprocess.run(s.argv(["egress", "warm", "--stop"]), env=s.env, cwd=project,
                           capture_output=True, check=False)  # fmt: skip
        return INTRO + "\n" + "\n".join(s.chunks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--check", action="store_true", help="compare with the page; exit 1 if it differs"
    )
    ap.add_argument("--out", type=Path, default=PAGE, help="the page (default: %(default)s)")
    args = ap.parse_args()
    page = produce()
    if not args.check:
        args.out.write_text(page)
        print(f"wrote {args.out}")
        return 0
    old = args.out.read_text() if args.out.exists() else ""
    if old == page:
        print(f"{args.out} is what the session produces")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        old.splitlines(keepends=True), page.splitlines(keepends=True),
        str(args.out), "produced now",
    ))  # fmt: skip
    print(f"\n{args.out} differs from the session: run `python scripts/getting_started.py`",
          file=sys.stderr)  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
