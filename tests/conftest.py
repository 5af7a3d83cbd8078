"""Suite-wide check: every program the tests, or the code they drive, start on the host
is one a fresh Debian machine gets from `scripts/setup` (or `.ci/`), or one every
Debian machine has (priority `required`).

Why: a machine where someone installed a tool by hand passes a suite that fails on a
fresh one (socat did exactly that). Rather than guess program names from the source,
the suite records what is really started: a `sys.addaudithook` hook on
`subprocess.Popen`/`os.exec*`/`os.posix_spawn` in this process, and the same hook in
every Python child through a `sitecustomize` on `PYTHONPATH` (the `bot-bottle` CLI, its
sidecars). Programs started inside a bottle are the bottle's business and not seen.
At the end of the session, a program that setup does not install fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_LOG_ENV = "BB_TEST_PROGRAM_LOG"

_HOOK = """
import os, sys

def _bb_record(event, args, _log=os.environ.get("BB_TEST_PROGRAM_LOG")):
    if not _log or event not in ("subprocess.Popen", "os.exec", "os.posix_spawn"):
        return
    exe, argv = args[0], args[1]
    if not exe:
        exe = argv[0] if isinstance(argv, (list, tuple)) and argv else str(argv).split()[0]
    try:
        with open(_log, "a", encoding="utf-8") as f:
            f.write(os.fsdecode(exe) + "\\n")
    except OSError:
        pass

sys.addaudithook(_bb_record)
"""

# Started by the suite itself, never a machine dependency to check.
_IGNORED = {"sh", "bash", "env", "true", "false"}


def _site_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="bb-programs-"))
    (d / "sitecustomize.py").write_text(_HOOK)
    return d


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(_LOG_ENV):  # a nested pytest: the outer one records
        return
    site = _site_dir()
    log = site / "started.txt"
    log.touch()
    os.environ[_LOG_ENV] = str(log)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p
    )
    exec(compile(_HOOK, "<bb-program-hook>", "exec"), {})
    config.stash[_log_key] = log


_log_key = pytest.StashKey[Path]()


def _setup_text() -> str:
    parts = []
    for d in (ROOT / "scripts", ROOT / ".ci"):
        for f in sorted(d.glob("*")) if d.is_dir() else []:
            if f.is_file():
                parts.append(f.read_text(errors="replace"))
    return "\n".join(parts)


def _words(text: str) -> set[str]:
    out: set[str] = set()
    for raw in text.replace("(", " ").replace(")", " ").replace('"', " ").split():
        out.add(raw.strip("'`;,[]{}"))
    return out


def _package_of(path: str) -> str:
    # dpkg knows a merged-/usr program by the path its package ships (`/bin/cp`).
    name = os.path.basename(path)
    dirs = ("/bin", "/usr/bin", "/sbin", "/usr/sbin")
    for candidate in (os.path.realpath(path), path, *(f"{d}/{name}" for d in dirs)):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            return r.stdout.split(":", 1)[0].split(",", 1)[0].strip()
    return ""


def _priority(pkg: str) -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Priority}", pkg], capture_output=True, text=True)
    return r.stdout.strip()


def _unlisted(started: set[str]) -> list[str]:
    """Programs started that a fresh machine would not have, each with the reason."""
    words = _words(_setup_text())
    own = (str(ROOT), sys.prefix, tempfile.gettempdir(), str(Path.home()))
    problems = []
    for exe in sorted(started):
        name = os.path.basename(exe)
        if name in _IGNORED or name.startswith("python"):
            continue
        path = exe if os.path.isabs(exe) else shutil.which(exe) or ""
        if path and path.startswith(own):
            continue  # the project's venv, its agent prefix, or a script a test wrote
        if name in words:
            continue  # setup installs or checks it by name (npm may come from anywhere)
        pkg = _package_of(path) if path else ""
        if not pkg:
            problems.append(f"{name}: not installed by scripts/setup, and no Debian package")
            continue
        if pkg in words or _priority(pkg) == "required":
            continue
        problems.append(f"{name}: from Debian package {pkg}, which scripts/setup never installs")
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log = session.config.stash.get(_log_key, None)
    if log is None or not log.exists():
        return
    os.environ.pop(_LOG_ENV, None)  # our own dpkg look-ups are not the suite's
    started = {line.strip() for line in log.read_text().splitlines() if line.strip()}
    problems = _unlisted(started)
    shutil.rmtree(log.parent, ignore_errors=True)
    if not problems:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    msg = "programs the suite started that a fresh machine lacks (add them to scripts/setup):"
    lines = [msg, *(f"  {p}" for p in problems)]
    if tr is not None:
        tr.write_line("\n".join(lines), red=True)
    else:
        print("\n".join(lines), file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
