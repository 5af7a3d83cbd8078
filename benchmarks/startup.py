"""Startup time: `bot-bottle run -y` to the agent's first instruction and to exit,
against bare bubblewrap and sandbox-runtime (`srt true`), measured in the same run, one
round of each in turn so they share the machine's noise. Prints a ratio table.

The agent is the `command` template running `date +%s.%N`: its output is the moment
the agent's first instruction ran. Three ways a run starts its egress sidecar:
- default: the per-user egress helper (started by the first run, reused) forks it;
- first: the first run, which starts the helper itself;
- cold: `BOT_BOTTLE_EGRESS_HELPER=off`, each run spawns its sidecar (mitmproxy import).

`srt` comes from `scripts/setup --bench` (.bench/node_modules/.bin/srt) or PATH; without
it the srt row is left out and said so. Besides the medians it prints the ratio of the
default run to `srt true` of every round (paired: measured back to back), so the spread
shows; the machine is shared, so a single figure says little.

Bytecode is compiled first (`compileall`, into the package's `__pycache__`), so every
row runs with it as an installed package does, whatever `PYTHONDONTWRITEBYTECODE` says:
without it each run compiles the modules it imports from source, tens of ms.

No process left behind: the benchmark is its processes' subreaper, so a process a run
orphans (a `bwrap` left unreaped, a sidecar outliving its launcher) is found after
that run, counted and named; the per-user egress helper is the one that may stay.

With `--microvm` each round also boots the microVM backend (root only here: its
virtiofsd needs it; the guest built, as `bot-bottle images guest` does):
- bare qemu: the same kernel, initramfs and root image booted to `/bin/true`, with the
  accelerator the backend picks and its default memory, powered off;
- run -y, microvm: a `command` bottle on `backend: microvm` echoing one line, to its
  first output (seen on the host: the guest's clock is not the host's) and to exit.
It prints them against bare bwrap, and the pairs (microvm run / bare qemu, microvm run
/ namespace run) of every round. Under TCG a round takes seconds: keep -n small.

Run: python benchmarks/startup.py [-n 10] [--microvm]
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MANIFEST = """
bottles:
  b:
    agent_provider: {template: command, command: [date, "+%s.%N"]}
    workspace: none
    backend: namespace
agents:
  bench: {bottle: b}
"""

MICROVM = """
  vm:
    agent_provider: {template: command, command: [echo, go]}
    workspace: none
    backend: microvm
"""


def bare_bwrap() -> float:
    t0 = time.perf_counter()
    subprocess.run(["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
                    "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                    "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
                    "true"], check=True)  # fmt: skip
    return time.perf_counter() - t0


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of the runs (their own children that outlive them) become ours, so
    `leftovers` can find them, zombies included."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _proc(pid: str) -> tuple[str, str, str]:
    """(state, command, cwd) of a process, or empty strings once it is gone."""
    try:
        comm, stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        state = stat.split()[0]
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        cwd = os.readlink(f"/proc/{pid}/cwd") if state != "Z" else ""
        return state, cmd or comm.split("(", 1)[1], cwd
    except OSError:
        return "", "", ""


def _helper(cmd: str, cwd: str) -> bool:
    """The egress helper itself; the sidecars it forks work in a bottle's dir."""
    return "egress.zygote" in cmd and "/bottles/" not in cwd


def _children() -> set[str]:
    kids: set[str] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        kids.update((task / "children").read_text().split())
    return kids


def leftovers(home: Path) -> list[str]:
    """What the runs left: our orphaned children (reaped here, once counted) and any
    process still working under the runs' state root, except the egress helper."""
    out = []
    kids = _children()
    for pid in kids:
        state, cmd, cwd = _proc(pid)
        if state and not _helper(cmd, cwd):
            out.append(f"{pid} {'<defunct> ' if state == 'Z' else ''}{cmd}")
            if state == "Z":
                os.waitpid(int(pid), 0)
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and d.name not in kids:
            state, cmd, cwd = _proc(d.name)
            if cwd.startswith(str(home)) and not _helper(cmd, cwd):
                out.append(f"{d.name} {cmd} (in {cwd})")
    return out


def srt_path() -> str | None:
    local = Path(__file__).resolve().parents[1] / ".bench" / "node_modules" / ".bin" / "srt"
    return str(local) if local.exists() else shutil.which("srt")


def srt_true(srt: str, home: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([srt, "true"], check=True, capture_output=True,
                   env={**os.environ, "HOME": str(home)})  # fmt: skip
    return time.perf_counter() - t0


def stop_helper(env: dict[str, str], cwd: Path) -> None:
    """Stop the egress helper, and reap it: it is our child once its launcher exited."""
    helpers = [pid for pid in _children() if "egress.zygote" in _proc(pid)[1]]
    subprocess.run([sys.executable, "-m", "bot_bottle", "egress", "warm", "--stop"], env=env,
                   cwd=cwd, capture_output=True, check=True)  # fmt: skip
    for pid in helpers:
        os.waitpid(int(pid), 0)


def bottle_run(env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(seconds to the agent's first instruction, seconds to bot-bottle's exit)."""
    t0 = time.time()
    p0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "run", "bench", "-y"], env=env,
                       cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       check=False)  # fmt: skip
    total = time.perf_counter() - p0
    if r.returncode != 0:
        raise SystemExit(f"bot-bottle run failed:\n{r.stderr}")
    first = float(r.stdout.strip().splitlines()[-1])
    return first - t0, total


def bottle_run_output(env: dict[str, str], cwd: Path, agent: str) -> tuple[float, float]:
    """(seconds to the agent's first line of output, as the host sees it arrive; seconds
    to bot-bottle's exit)."""
    p0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", agent, "-y"], env=env,
                         cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    assert p.stdout is not None
    first = p.stdout.readline()
    seen = time.perf_counter() - p0
    _, err = p.communicate()
    total = time.perf_counter() - p0
    if p.returncode != 0 or not first.strip():
        raise SystemExit(f"bot-bottle run {agent} failed ({p.returncode}):\n{err}")
    return seen, total


class BareQemu:
    """The microVM backend's guest booted bare: no launcher, sidecars, virtiofs or
    channel; the kernel, initramfs and root a bottle boots, to `/bin/true`."""

    def __init__(self) -> None:
        from bot_bottle.backends.microvm import accel
        from bot_bottle.backends.microvm.backend import DEFAULT_MEMORY_MB
        from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
        from bot_bottle.executor import ProcessExecutor
        from bot_bottle.images.guest.store import cache_dir, ensure_boot, ensure_root

        ex = ProcessExecutor()
        files, _ = ensure_boot(ex, progress=lambda _line: None)
        root = ensure_root(ex, progress=lambda _line: None).path
        picked = accel.chosen(accel.probe(files, ex, cache_dir()))
        if picked is None:
            raise SystemExit("no accelerator boots the guest here (`bot-bottle doctor`)")
        self.accel = picked
        self.cfg = VmConfig(picked.name, files.kernel.vmlinuz, files.initramfs, root=root,
                            command=("/bin/true",), memory_mb=DEFAULT_MEMORY_MB,
                            tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()))  # fmt: skip

    def true(self) -> float:
        from bot_bottle.backends.microvm import boot
        from bot_bottle.executor import ProcessExecutor

        t0 = time.perf_counter()
        b = boot.run(self.cfg, ProcessExecutor(), timeout=120, marker="reboot: Power down")
        if b.marker_s is None or b.timed_out or b.guest_exit != 0:
            raise SystemExit(f"bare qemu boot failed: {b.tail(8)}")
        return time.perf_counter() - t0


def paired(samples: dict[str, list[float]], over: str, under: str) -> str:
    pairs = [a / b for a, b in zip(samples[over], samples[under], strict=True)]
    return (f"{over} / {under}, each round: " + " ".join(f"{r:.2f}" for r in pairs)
            + f" (median {statistics.median(pairs):.2f}, min {min(pairs):.2f}, "
            f"max {max(pairs):.2f})")  # fmt: skip


def approve(env: dict[str, str], cwd: Path) -> None:
    """`run -y` starts only an approved manifest: approve it once, outside the timing."""
    subprocess.run([sys.executable, "-m", "bot_bottle", "trust", "--yes"], env=env, cwd=cwd,
                   capture_output=True, check=True)  # fmt: skip


def cli_import() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot_bottle", "--help"], capture_output=True,
                   check=True)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--microvm", action="store_true", help="add the microVM rows (root)")
    args = ap.parse_args()
    n = args.n
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "bot_bottle", quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="bb-bench-"))
    manifest = MANIFEST
    if args.microvm:
        manifest = MANIFEST.replace("agents:\n", MICROVM.lstrip("\n") + "agents:\n")
        manifest += "  bench-vm: {bottle: vm}\n"
    (tmp / "bot-bottle.yaml").write_text(manifest)
    (tmp / "srt-home").mkdir()
    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp / "home")}
    qemu: BareQemu | None = None
    if args.microvm:
        from bot_bottle.images.guest.store import cache_dir

        if os.geteuid() != 0:
            raise SystemExit("--microvm needs root: the backend's virtiofsd runs only as root")
        qemu = BareQemu()
        # The guest artefacts hold nothing of a bottle's: the runs share this user's cache.
        env["BOT_BOTTLE_GUEST_CACHE"] = str(cache_dir())
    cold_env = {**env, "BOT_BOTTLE_EGRESS_HELPER": "off"}
    approve(env, tmp)
    become_subreaper()
    srt = srt_path()
    samples: dict[str, list[float]] = {}
    left: dict[str, list[str]] = {}

    def add(name: str, secs: float) -> None:
        samples.setdefault(name, []).append(secs)
        left.setdefault(name.split(":")[0], []).extend(leftovers(tmp / "home"))

    try:
        for _ in range(n):
            add("bare bwrap ... true", bare_bwrap())
            if srt:
                add("srt true (sandbox-runtime)", srt_true(srt, tmp / "srt-home"))
            add("bot-bottle --help (CLI import)", cli_import())
            stop_helper(env, tmp)
            # A helper stopped while it answered a status probe orphans that child.
            left.setdefault("egress warm --stop", []).extend(leftovers(tmp / "home"))
            first = bottle_run(env, tmp)
            add("run -y, first run (starts helper): exit", first[1])
            default = bottle_run(env, tmp)
            add("run -y, default (helper): first instruction", default[0])
            add("run -y, default (helper): exit", default[1])
            cold = bottle_run(cold_env, tmp)
            add("run -y, cold sidecar: first instruction", cold[0])
            add("run -y, cold sidecar: exit", cold[1])
            if qemu is not None:
                vm = qemu.accel.name
                add(f"bare qemu ({vm}): /bin/true on the root, exit", qemu.true())
                out = bottle_run_output(env, tmp, "bench-vm")
                add(f"run -y, microvm ({vm}): first output", out[0])
                add(f"run -y, microvm ({vm}): exit", out[1])
    finally:
        stop_helper(env, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {name: statistics.median(v) for name, v in samples.items()}
    bare = rows["bare bwrap ... true"]
    ref = rows.get("srt true (sandbox-runtime)")
    print(f"median of {n} rounds, each measuring every row in turn")
    if ref is None:
        print("srt not found (scripts/setup --bench installs it): no srt column")
    print(f"{'measurement':47} {'ms':>8} {'x bare bwrap':>13} {'x srt true':>11}")
    for name, secs in rows.items():
        vs_srt = f"{secs / ref:11.2f}" if ref else f"{'-':>11}"
        print(f"{name:47} {secs * 1000:8.1f} {secs / bare:13.1f} {vs_srt}")
    if ref is not None:
        srts = samples["srt true (sandbox-runtime)"]
        pairs = [
            d / s for d, s in zip(samples["run -y, default (helper): exit"], srts, strict=True)
        ]
        print("run -y default exit / srt true, each round: "
              + " ".join(f"{r:.2f}" for r in pairs)
              + f" (median {statistics.median(pairs):.2f}, min {min(pairs):.2f}, "
              f"max {max(pairs):.2f})")  # fmt: skip
    if qemu is not None:
        vm = qemu.accel.name
        print(f"microvm accelerator: {vm} ({qemu.accel.detail})")
        print(paired(samples, f"run -y, microvm ({vm}): exit",
                     f"bare qemu ({vm}): /bin/true on the root, exit"))  # fmt: skip
        print(paired(samples, f"run -y, microvm ({vm}): exit", "run -y, default (helper): exit"))
    print(f"processes left behind ({n} rounds; the egress helper may stay):")
    for name, lines in left.items():
        print(f"  {name}: {len(lines)}" + "".join(f"\n    {line}" for line in lines[:6]))


if __name__ == "__main__":
    main()
