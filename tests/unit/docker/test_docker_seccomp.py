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


def family_action(name: str, family: int) -> tuple[str, int]:
    """What the profile does with `name(family, ...)`: the one matching rule's action,
    or the default (EPERM) when none matches."""
    hits = []
    for r in rules_for(name):
        (arg,) = r["args"]
        assert arg["index"] == 0
        op, v = arg["op"], arg["value"]
        if (op == "SCMP_CMP_EQ" and family == v) or (op == "SCMP_CMP_GT" and family > v):
            hits.append((r["action"], r.get("errnoRet", 0)))
    assert len(hits) <= 1, (name, family, hits)  # libseccomp refuses overlapping rules
    return hits[0] if hits else ("SCMP_ACT_ERRNO", errno.EPERM)


def test_only_unix_and_ip_sockets() -> None:
    allowed = {socket.AF_UNIX, socket.AF_INET, socket.AF_INET6}
    for name in ("socket", "socketpair"):
        for family in range(0, 256):
            action = family_action(name, family)
            if family in allowed:
                assert action == ("SCMP_ACT_ALLOW", 0), (name, family)
            else:
                assert action == ("SCMP_ACT_ERRNO", errno.EAFNOSUPPORT), (name, family)
    assert family_action("socket", socket.AF_VSOCK)[0] == "SCMP_ACT_ERRNO"


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
