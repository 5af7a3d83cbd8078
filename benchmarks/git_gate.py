"""Git gate benchmarks: how fast a push is scanned, and that its cost follows the
push, not the repository.

1. Scan throughput: a synthetic push of 1,000 commits; MB of new objects per second
   through the gate's scan (`rev-list --objects` + `cat-file --batch` + parsing +
   the shared DLP scanner) against the two git commands alone (the floor).
2. One-commit push on a history of 1,000 / 10,000 / 100,000 commits (built with
   `git fast-import`): the full check (ref rules with the fast-forward test, incoming
   commits, allowlist, scan). It should stay flat.

Run: python benchmarks/git_gate.py [--commits 1000] [--sizes 1000,10000,100000]

Measured (git 2.39, 2 cores, two runs each, alternating, same machine state): the
1,000-commit push took 0.20 s to scan as `git log -p` added lines (8.0 MB) and takes
0.26-0.27 s as whole new objects (10.2 MB: blobs whole, trees, commits), the same
~38 MB/s; a one-commit check on 1k/10k/100k commits went from 12.5-13.5 ms to
10-12.5 ms, and without a commit-graph on 100k from ~1.2 s to ~0.8-0.9 s.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot_bottle.policy.commit_scan import Allowlist
from bot_bottle.policy.dlp import Scanner
from bot_bottle.policy.object_scan import GitObject, object_pieces
from bot_bottle.policy.refs import RefRules, RefUpdate
from bot_bottle.sidecars.git_gate.git import Git
from bot_bottle.sidecars.git_gate.push_check import check_push, new_objects, scan_push

WORDS = ["def", "return", "self", "value", "import", "class", "for", "while", "if", "else",
         "try", "except", "yield", "lambda", "config", "server", "client", "request",
         "response", "handler", "mirror", "commit", "branch", "merge", "tag", "0", "1", "2",
         "42", "100", "1024", "None", "True", "False", "=", "==", "+", "-", "*", "/", "(",
         ")", "[", "]", "{", "}", ":", ",", "."]  # fmt: skip
IDENT = ("-c", "user.name=bench", "-c", "user.email=bench@x")


def fast_import(repo: Path, stream: bytes) -> None:
    subprocess.run(
        ["git", "--git-dir", str(repo), "fast-import", "--quiet", "--done"],
        input=stream, check=True,
    )  # fmt: skip


def commit_cmd(ref: str, n: int, files: list[tuple[str, bytes]], parent: str | None) -> bytes:
    msg = f"commit {n}\n".encode()
    out = [f"commit {ref}\nmark :{n}\n".encode()]
    out.append(f"committer bench <bench@x> {1_600_000_000 + n} +0000\n".encode())
    out.append(b"data %d\n%s" % (len(msg), msg))
    if parent:
        out.append(f"from {parent}\n".encode())
    for path, data in files:
        out.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    return b"".join(out)


def source_text(rng: random.Random, lines: int) -> bytes:
    return b"".join(
        (" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "\n").encode()
        for _ in range(lines)
    )


def build_push(repo: Path, commits: int, lines_per_commit: int) -> tuple[str, str]:
    """A base commit under refs/heads/main (what upstream has) and `commits` new
    commits on top that no ref points at (as objects sit in receive-pack's quarantine)."""
    rng = random.Random(7)
    parts = [commit_cmd("refs/heads/main", 1, [("README", b"base\n")], None)]
    for i in range(commits):
        files = [(f"src/mod{i % 50}/file{i}.py", source_text(rng, lines_per_commit))]
        parts.append(commit_cmd("refs/heads/incoming", i + 2, files, f":{i + 1}"))
    parts.append(b"done\n")
    fast_import(repo, b"".join(parts))
    git = Git(repo, dict(os.environ))
    base, tip = git.out("rev-parse", "main"), git.out("rev-parse", "incoming")
    git.run("update-ref", "-d", "refs/heads/incoming")
    return base, tip


def throughput(commits: int, lines: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        repo = Path(d) / "m.git"
        subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
        _, tip = build_push(repo, commits, lines)
        git = Git(repo, dict(os.environ))
        update = RefUpdate("refs/heads/incoming", "0" * 40, tip)
        oids = [oid for oid, _ in new_objects(git, [tip])]
        size = sum(len(data) for _, _, data in git.objects(oids))
        scanner = Scanner()

        def floor() -> None:
            listed = [oid for oid, _ in new_objects(git, [tip])]
            for _ in git.objects(listed):
                pass

        def parse_only() -> None:
            new_objects(git, [tip])
            for oid, kind, data in git.objects(oids):
                for _ in object_pieces(GitObject(oid, kind, data), len(oid) // 2):
                    pass

        def gate() -> None:
            found, _, _ = scan_push(git, [update], scanner, Allowlist())
            assert not found, found

        mb = size / 1e6
        t_floor, t_parse, t_gate = (min(timed(f, 3)) for f in (floor, parse_only, gate))
        print(f"\n## Scan throughput: {commits} commits, {len(oids)} new objects, "
              f"{mb:.1f} MB\n")  # fmt: skip
        print("| stage | time (s) | MB new objects / s | x floor |")
        print("| --- | ---: | ---: | ---: |")
        for name, t in (
            ("rev-list --objects + cat-file --batch (floor)", t_floor),
            ("+ object parse", t_parse),
            ("gate scan (list, read, parse, DLP scanner)", t_gate),
        ):
            print(f"| {name} | {t:.3f} | {mb / t:.1f} | {t / t_floor:.2f} |")


def history(sizes: list[int], runs: int) -> None:
    print("\n## One-commit push vs upstream history\n")
    print("The mirror keeps a commit-graph (fetch.writeCommitGraph); the last column is the")
    print("same check without one, for comparison.\n")
    print("| upstream commits | build (s) | check median (ms) | min (ms) | hook process (ms) "
          "| no commit-graph (ms) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    rng = random.Random(3)
    rules = RefRules.from_patterns(["main"], [])
    scanner = Scanner()
    for size in sizes:
        with tempfile.TemporaryDirectory() as d:
            repo = Path(d) / "m.git"
            subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
            t0 = time.perf_counter()
            parts = [
                commit_cmd(
                    "refs/heads/main",
                    i + 1,
                    [(f"f{i % 200}.txt", f"line {i}\n".encode())],
                    f":{i}" if i else None,
                )
                for i in range(size)
            ]
            parts.append(b"done\n")
            fast_import(repo, b"".join(parts))
            build = time.perf_counter() - t0
            git = Git(repo, dict(os.environ))
            old = git.out("rev-parse", "main")
            data = source_text(rng, 40)
            fast_import(
                repo,
                commit_cmd("refs/heads/tmp", 1, [("new.py", data)], old) + b"done\n",
            )
            new = git.out("rev-parse", "tmp")
            git.run("update-ref", "-d", "refs/heads/tmp")
            update = RefUpdate("refs/heads/main", old, new)

            check = functools.partial(one_push, git, update, rules, scanner)
            no_graph = statistics.median(timed(check, runs))
            git.run("commit-graph", "write", "--reachable")
            times = timed(check, runs)
            hook = hook_time(repo, update)
            print(f"| {size:,} | {build:.1f} | {statistics.median(times) * 1e3:.1f} "
                  f"| {min(times) * 1e3:.1f} | {hook * 1e3:.0f} | {no_graph * 1e3:.0f} |")  # fmt: skip


def one_push(git: Git, update: RefUpdate, rules: RefRules, scanner: Scanner) -> None:
    v = check_push(git, [update], rules, scanner)
    assert v.allow and v.commits == (update.new,), v


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall time of each of `runs` calls."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def hook_time(repo: Path, update: RefUpdate) -> float:
    """The pre-receive hook as a process (Python start + imports + check), not forwarding:
    the config names a remote whose upstream is the repo itself, so the checks pass and
    the forward is a no-op push of an object upstream already has."""
    import json
    import sys

    cfg = repo / "gate.json"
    cfg.write_text(json.dumps({"remotes": [{"name": "o", "url": str(repo)}]}))
    argv = [sys.executable, "-m", "bot_bottle.sidecars.git_gate.hook", "--config", str(cfg),
            "--remote", "o"]  # fmt: skip
    line = f"{update.old} {update.new} {update.ref}\n".encode()
    from bot_bottle.sidecars.git_gate.upstream import UPSTREAM_ENV_NAMES

    env = {**os.environ, "GIT_DIR": str(repo), UPSTREAM_ENV_NAMES: "PATH,HOME"}
    t = time.perf_counter()
    subprocess.run(argv, input=line, env=env, cwd=repo, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=200, help="added lines per commit")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    print(f"git: {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout}")
    throughput(a.commits, a.lines)
    history([int(s) for s in a.sizes.split(",")], a.runs)


if __name__ == "__main__":
    main()
