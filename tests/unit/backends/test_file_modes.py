"""No setuid/setgid files: the namespace filter (run here the way the kernel runs it)
and the Docker profile refuse every system call that could set those bits, and let
ordinary modes through."""

from __future__ import annotations

import errno

import pytest

from bot_bottle.backends import file_modes as rules
from bot_bottle.backends.docker import seccomp as docker_seccomp
from bot_bottle.backends.namespace import file_modes, seccomp

O_CREAT, O_TMPFILE = 0o100, 0o20200000
CASES = [  # (syscall, args, refused)
    ("fchmodat", [0, 0, 0o4755], True), ("fchmodat", [0, 0, 0o2755], True),
    ("fchmodat", [0, 0, 0o1777], False), ("fchmodat", [0, 0, 0o755], False),
    ("fchmod", [3, 0o6755], True), ("fchmod", [3, 0o644], False),
    ("fchmodat2", [0, 0, 0o4700, 0], True),
    ("openat", [0, 0, O_CREAT, 0o4755], True), ("openat", [0, 0, O_TMPFILE, 0o2755], True),
    ("openat", [0, 0, O_CREAT, 0o644], False),
    ("openat", [0, 0, 0, 0o4755], False),  # no file created: the mode is unused
    ("mkdirat", [0, 0, 0o2775], True), ("mkdirat", [0, 0, 0o775], False),
    ("mknodat", [0, 0, 0o104755, 0], True), ("mknodat", [0, 0, 0o10644, 0], False),
    ("io_uring_setup", [8, 0], True),
]  # fmt: skip
X86_ONLY = [
    ("chmod", [0, 0o4755], True), ("chmod", [0, 0o755], False), ("creat", [0, 0o6755], True),
    ("open", [0, O_CREAT, 0o4755], True), ("open", [0, 0, 0o4755], False),
    ("mkdir", [0, 0o2755], True), ("mknod", [0, 0o104755, 0], True),
]  # fmt: skip


@pytest.mark.parametrize("arch", sorted(file_modes.NUMBERS))
def test_namespace_filter(arch: str) -> None:
    prog = file_modes.program(arch)
    audit, numbers = seccomp.ARCHES[arch].audit, file_modes.NUMBERS[arch]
    cases = CASES + (X86_ONLY if arch == "x86_64" else [])
    for name, args, refused in cases:
        got = seccomp.evaluate(prog, audit, numbers[name], args)
        assert got == (seccomp.RET_EPERM if refused else seccomp.RET_ALLOW), (name, args)
    assert seccomp.evaluate(prog, audit, numbers["openat2"], []) == seccomp.RET_ENOSYS
    # Another architecture passes here: the main filter kills it.
    assert seccomp.evaluate(prog, 0x40000003, 5, [0, O_CREAT, 0o4755]) == seccomp.RET_ALLOW


def test_both_backends_cover_the_same_system_calls() -> None:
    names = {r.syscall for r in rules.MODE_RULES} | set(rules.DENIED) | set(rules.UNAVAILABLE)
    assert names <= set(file_modes.NUMBERS["x86_64"])
    # The Docker profile is an allow list: each such call has conditions or none at all.
    unconditional = {n for r in docker_seccomp.profile()["syscalls"] if not r.get("args")
                     and r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}  # fmt: skip
    assert (
        not (names | set(seccomp.DENIED) | {"clone", "unshare", "clone3", "ioctl"}) & unconditional
    )


def _refused_by_profile(name: str, args: list[int]) -> int | None:
    """What the Docker profile answers, evaluated as libseccomp would: a rule applies
    when all its argument conditions hold; any applying ALLOW allows, else the first
    applying ERRNO answers, else the default (EPERM)."""
    refused: int | None = None
    for r in docker_seccomp.profile()["syscalls"]:
        if name not in r["names"]:
            continue
        ok = True
        for c in r.get("args", []):
            v = args[c["index"]] if c["index"] < len(args) else 0
            if c["op"] == "SCMP_CMP_MASKED_EQ":
                ok &= (v & c["value"]) == c["valueTwo"]
            elif c["op"] == "SCMP_CMP_LT":
                ok &= v < c["value"]
            elif c["op"] == "SCMP_CMP_GT":
                ok &= v > c["value"]
            else:
                ok &= v == c["value"]
        if ok and r["action"] == "SCMP_ACT_ALLOW":
            return None
        if ok and refused is None:
            refused = int(r.get("errnoRet", errno.EPERM))
    return errno.EPERM if refused is None else refused


def test_docker_profile_agrees() -> None:
    for name, args, refused in CASES + X86_ONLY:
        assert _refused_by_profile(name, args) == (errno.EPERM if refused else None), name
    assert _refused_by_profile("openat2", []) == errno.ENOSYS
    assert _refused_by_profile("clone3", []) == errno.ENOSYS
    assert _refused_by_profile("unshare", [seccomp.CLONE_NEWUSER]) == errno.EPERM
    assert _refused_by_profile("ioctl", [0, seccomp.TIOCSTI]) == errno.EPERM
    assert _refused_by_profile("ptrace", []) == errno.EPERM
    assert _refused_by_profile("ioctl", [0, seccomp.TIOCLINUX]) == errno.EPERM
    assert _refused_by_profile("ioctl", [0, 0x5401]) is None  # TCGETS
    assert docker_seccomp.profile()["defaultAction"] == "SCMP_ACT_ERRNO"
