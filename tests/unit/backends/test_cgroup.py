"""Where a namespace bottle's limits go, on fake cgroup trees: v2 as root, v2 delegated
to the user, v2 not delegated (refused, naming the field), v1, missing controllers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fakes.executor import RecordingExecutor

from bot_bottle.backends.namespace import cgroup
from bot_bottle.backends.namespace.backend import NamespaceBackend
from bot_bottle.backends.namespace.cgroup import LAUNCHER_LEAF, Cgroup, Limits, for_bottle, plan
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.errors import ManifestError

LIMITS = Limits(cpus=0.5, memory=64 * 1024**2)


def v2_tree(tmp: Path, own: str, controllers: str = "cpu memory pids", procs: str = "") -> Path:
    root = tmp / "cgroup"
    d = root / own.lstrip("/")
    d.mkdir(parents=True)
    for where in {root, d}:
        (where / "cgroup.controllers").write_text(controllers + "\n")
        (where / "cgroup.subtree_control").write_text("")
        (where / "cgroup.procs").write_text("")
    (d / "cgroup.procs").write_text(procs)
    (tmp / "self").write_text(f"0::{own}\n")
    return root


def made(group: Cgroup, root: Path) -> dict[str, str]:
    """The tree after `create`, as the kernel would have it (files the fake cannot make
    itself are made empty first)."""
    for s in group.steps:
        if s.op == "write-if-there":
            continue
        if s.op == "write":
            s.path.parent.mkdir(parents=True, exist_ok=True)
    group.create()
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*")
            if p.is_file() and p.name not in ("cgroup.controllers",)}  # fmt: skip


def test_v2_root_makes_a_bottle_cgroup_under_bot_bottle(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, "/user.slice/session-1.scope", procs="1\n")
    group = plan("s-1", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(group, Cgroup) and group.version == 2
    tree = made(group, root)
    assert tree["cgroup.subtree_control"] == "+cpu +memory +pids"
    assert tree["bot-bottle/cgroup.subtree_control"] == "+cpu +memory +pids"
    assert tree["bot-bottle/bot-bottle-s-1/cpu.max"] == "50000 100000"
    assert tree["bot-bottle/bot-bottle-s-1/memory.max"] == str(64 * 1024**2)
    assert tree["bot-bottle/bot-bottle-s-1/pids.max"] == "4096"
    assert group.views == ("/sys/fs/cgroup",)
    assert group.procs == (root / "bot-bottle/bot-bottle-s-1/cgroup.procs",)


def test_v2_delegated_moves_the_launcher_to_a_leaf_first(tmp_path: Path) -> None:
    own = "/user.slice/user@1000.service/app.slice/run-1.scope"
    root = v2_tree(tmp_path, own, procs=f"{os.getpid()}\n")
    group = plan("s-1", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=1000)
    assert isinstance(group, Cgroup)
    ops = [(s.op, s.path.name) for s in group.steps]
    assert ops[:3] == [("mkdir", LAUNCHER_LEAF), ("adopt", "cgroup.procs"),
                       ("write", "cgroup.subtree_control")]  # fmt: skip
    tree = made(group, root)
    scope = own.lstrip("/")
    assert tree[f"{scope}/{LAUNCHER_LEAF}/cgroup.procs"] == str(os.getpid())
    assert tree[f"{scope}/bot-bottle-s-1/cpu.max"] == "50000 100000"
    # Run again from the leaf: the same scope, not a leaf inside the leaf.
    (tmp_path / "self").write_text(f"0::{own}/{LAUNCHER_LEAF}\n")
    again = plan("s-2", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=1000)
    assert isinstance(again, Cgroup) and again.dirs[0].parent == root / scope


def test_v2_root_in_a_container_uses_its_own_root_like_a_delegated_one(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, "/", procs="1\n")
    (root / "cgroup.type").write_text("domain\n")  # a cgroup namespace's root, not the host's
    group = plan("s-1", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(group, Cgroup)
    assert [s.op for s in group.steps[:2]] == ["mkdir", "adopt"]
    assert group.dirs == (root / "bot-bottle-s-1",)


def test_v2_not_delegated_is_refused_naming_the_fields(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, "/user.slice/session-1.scope")
    why = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=1000,
               writable=lambda p: False)  # fmt: skip
    assert isinstance(why, str)
    assert why.startswith("resources.cpus and resources.memory: the namespace backend cannot")
    assert "not delegated" in why


def test_v2_missing_controller_names_only_its_field(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, "/x", controllers="memory pids")
    why = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(why, str) and why.startswith("resources.cpus: ") and "memory" not in why
    ok = plan("s", Limits(memory=LIMITS.memory), root=root, self_cgroup=tmp_path / "self",
              euid=0)  # fmt: skip
    assert isinstance(ok, Cgroup)
    assert not any(s.path.name == "cpu.max" for s in ok.steps)


def test_more_cpus_than_the_host_is_refused_with_its_count() -> None:
    host = os.cpu_count() or 1
    with pytest.raises(ManifestError) as e:
        for_bottle("s", host + 1.0, None)
    assert str(e.value) == (f"resources.cpus: {host + 1} is more than this host's {host} CPUs\n"
                            f"  fix: lower `resources.cpus` to at most {host}")  # fmt: skip
    assert for_bottle("s", None, None) is None


def v1_tree(tmp: Path) -> Path:
    root = tmp / "cgroup"
    files = {"cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us"), "memory": ("memory.limit_in_bytes",),
             "pids": ("pids.max",)}  # fmt: skip
    for ctrl, names in files.items():
        d = root / ctrl / "job/7"
        d.mkdir(parents=True)
        for n in (*names, "cgroup.procs"):
            (root / ctrl / n).write_text("")
    (tmp / "self").write_text("4:memory:/job/7\n2:cpu,cpuacct:/job/7\n8:pids:/job/7\n0::/\n")
    return root


def test_v1_beside_the_launchers_own_cgroup_in_each_hierarchy(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    group = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(group, Cgroup) and group.version == 1
    assert group.views == ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids")
    tree = made(group, root)
    assert tree["cpu/job/7/bot-bottle-s/cpu.cfs_quota_us"] == "50000"
    assert tree["cpu/job/7/bot-bottle-s/cpu.cfs_period_us"] == "100000"
    assert tree["memory/job/7/bot-bottle-s/memory.limit_in_bytes"] == str(64 * 1024**2)
    assert "memory/job/7/bot-bottle-s/memory.memsw.limit_in_bytes" not in tree  # no swap acct
    assert tree["pids/job/7/bot-bottle-s/pids.max"] == "4096"


def test_v1_not_writable_refuses_each_field_it_cannot_place(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    why = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=1000,
               writable=lambda p: "memory" not in p.parts)  # fmt: skip
    assert isinstance(why, str) and why.startswith("resources.memory: ") and "needs root" in why


def test_v1_without_the_memory_hierarchy_refuses_memory(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    (root / "memory" / "cgroup.procs").unlink()
    why = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(why, str) and why.startswith("resources.memory: ")


def test_enter_moves_the_shell_into_every_directory_then_execs(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    group = plan("s", LIMITS, root=root, self_cgroup=tmp_path / "self", euid=0)
    assert isinstance(group, Cgroup)
    made(group, root)
    argv = group.enter(["/usr/bin/sh", "-c", "cat /proc/self/stat > /dev/null; echo ran"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert out.stdout == "ran\n"
    written = {(d / "cgroup.procs").read_text().strip() for d in group.dirs}
    assert len(written) == 1 and written.pop().isdigit()  # the shell's pid, in each
    group.remove(wait=0.2)  # still "in use": the fake keeps the pid; the dirs stay
    assert all(d.exists() for d in group.dirs)


def _backend_with_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[NamespaceBackend, RecordingExecutor, BottleSpec, Path]:
    root = v1_tree(tmp_path)
    real = cgroup.plan
    monkeypatch.setattr(cgroup, "plan", lambda slug, limits: real(
        slug, limits, root=root, self_cgroup=tmp_path / "self", euid=0))  # fmt: skip
    rec = RecordingExecutor()
    be = NamespaceBackend(rec, bwrap="bwrap")
    be.require = lambda: None  # type: ignore[method-assign]
    spec = BottleSpec(slug="s-1", state_dir=tmp_path / "state", workspace_mode="none",
                      workspace_path="", cpus=0.5, memory="64m")  # fmt: skip
    return be, rec, spec, root


def test_attach_runs_the_sandbox_in_the_bottles_cgroup_and_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    be, rec, spec, root = _backend_with_tree(tmp_path, monkeypatch)
    removed: list[tuple[Path, ...]] = []
    monkeypatch.setattr(Cgroup, "remove", lambda self: removed.append(self.dirs))
    be.prepare(spec)
    assert be.attach(spec, ["sh"]) == 0
    argv = list(rec.calls[-1].argv)
    node = root / "cpu/job/7/bot-bottle-s-1"
    assert argv[:2] == ["/bin/sh", "-c"] and argv[4] == str(node / "cgroup.procs")
    assert argv[argv.index("--") + 1] == "bwrap"
    i = argv.index(str(node))
    assert argv[i - 1 : i + 2] == ["--ro-bind", str(node), "/sys/fs/cgroup/cpu"]
    assert removed and removed[0][0] == node  # removed once the command ended


def test_a_limit_the_host_cannot_enforce_stops_prepare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    be, rec, spec, root = _backend_with_tree(tmp_path, monkeypatch)
    (root / "memory" / "cgroup.procs").unlink()
    with pytest.raises(ManifestError) as e:
        be.prepare(spec)
    assert str(e.value).startswith("resources.memory: the namespace backend cannot enforce")
    assert "--backend docker" in str(e.value) and rec.calls == []
