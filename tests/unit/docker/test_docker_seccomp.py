"""The Docker seccomp profile as data: socket families, io_uring, namespaces and the
native syscall table only. (Its effect inside a real container is proven in
tests/e2e/test_escape_e2e.py::test_only_unix_and_ip_sockets.)"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any

from bot_bottle.backends.docker import seccomp
from bot_bottle.backends.namespace.seccomp import DENIED


def rules_for(name: str) -> list[dict[str, Any]]:
    return [r for r in seccomp.profile()["syscalls"] if name in r["names"]]


def matches(arg: dict[str, Any], value: int) -> bool:
    op, v = arg["op"], arg["value"]
    return {"SCMP_CMP_EQ": value == v, "SCMP_CMP_GT": value > v}[op]


def family_action(name: str, family: int, protocol: int = 0) -> tuple[str, int]:
    """What the profile does with `name(family, type, protocol)`: the one matching
    rule's action, or the default (EPERM) when none matches."""
    hits = []
    for r in rules_for(name):
        args = {0: family, 2: protocol}
        if all(matches(a, args[a["index"]]) for a in r["args"]):
            hits.append((r["action"], r.get("errnoRet", 0)))
    assert len(hits) <= 1, (name, family, hits)  # libseccomp refuses overlapping rules
    return hits[0] if hits else ("SCMP_ACT_ERRNO", errno.EPERM)


def test_only_unix_and_ip_sockets() -> None:
    allowed = {socket.AF_UNIX, socket.AF_INET, socket.AF_INET6}
    for name in ("socket", "socketpair"):
        for family in range(0, 256):
            action = family_action(name, family)
            if family == socket.AF_NETLINK:
                assert action == ("SCMP_ACT_ALLOW", 0)  # NETLINK_ROUTE
                for protocol in (2, 4, 9, 15, 16, 255):
                    assert family_action(name, family, protocol) == (
                        "SCMP_ACT_ERRNO", errno.EPROTONOSUPPORT)  # fmt: skip
            elif family in allowed:
                assert action == ("SCMP_ACT_ALLOW", 0), (name, family)
            else:
                assert action == ("SCMP_ACT_ERRNO", errno.EAFNOSUPPORT), (name, family)
    assert family_action("socket", socket.AF_VSOCK)[0] == "SCMP_ACT_ERRNO"


def test_namespace_and_docker_allow_the_same_sockets() -> None:
    from bot_bottle.backends.namespace import seccomp as ns

    arch = ns.ARCHES["x86_64"]
    prog = ns.program("x86_64")
    for family in range(0, 64):
        for protocol in (0, 4, 16):
            in_docker = family_action("socket", family, protocol)[0] == "SCMP_ACT_ALLOW"
            args = [family, 1, protocol]
            in_namespace = ns.evaluate(prog, arch.audit, 41, args) == ns.RET_ALLOW
            assert in_docker == in_namespace, (family, protocol)


def test_default_deny_and_no_unfiltered_way_to_a_socket() -> None:
    p = seccomp.profile()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
               for n in r["names"]}  # fmt: skip
    refused = {"socket", "socketpair", "socketcall", "io_uring_setup", "io_uring_enter",
               "io_uring_register", "unshare", "setns", "clone3", "personality", "clone"}  # fmt: skip
    assert allowed & refused == set()
    assert allowed & set(DENIED) == set()  # the namespace filter's list holds here too
    assert rules_for("clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                    "errnoRet": errno.ENOSYS}]  # fmt: skip
    (clone,) = rules_for("clone")
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert clone["args"][0]["value"] & 0x10000000  # CLONE_NEWUSER is in the mask


def test_native_syscall_tables_only() -> None:
    for entry in seccomp.profile()["archMap"]:
        assert entry["subArchitectures"] == [], entry  # no int 0x80 / x32 / arm32 ABI


def test_security_opt_carries_the_json() -> None:
    opt = seccomp.security_opt()
    assert opt.startswith("seccomp=")
    assert json.loads(opt.removeprefix("seccomp=")) == seccomp.profile()
