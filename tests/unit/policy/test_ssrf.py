"""SSRF address checks: internal, special-purpose, embedded and metadata addresses."""

from __future__ import annotations

import ipaddress

import pytest

from bot_bottle.policy.ssrf import check_address


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "::1",
        "[::1]",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:8.8.8.8",  # mapped form itself is denied unless allowlisted
        "::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
        "2002:7f00:0001::",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "",
        "not-an-ip",
        "1.2.3",
        "127.1",
        "0x7f000001",
        "1.2.3.4/32",
    ],
)
def test_denied(ip: str) -> None:
    d = check_address(ip)
    assert not d.allow
    assert d.rule == "ssrf"
    # The reason names the address it judged (as given or as parsed), not just anything.
    bare = ip.strip("[]").split("%")[0]
    try:
        forms = {ip, bare, str(ipaddress.ip_address(bare))}
    except ValueError:
        forms = {repr(ip)}
        assert "is not an IP address" in d.reason, d.reason
    assert any(f in d.reason for f in forms), (forms, d.reason)


@pytest.mark.parametrize(
    "ip",
    ["8.8.8.8", "140.82.112.3", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:0808:0808::1"],
)
def test_public_allowed(ip: str) -> None:
    d = check_address(ip)
    assert d.allow, d.reason


@pytest.mark.parametrize(
    ("ip", "allowlist", "allow"),
    [
        ("10.1.2.3", ["10.1.0.0/16"], True),
        ("10.2.0.1", ["10.1.0.0/16"], False),
        ("::ffff:10.1.2.3", ["10.1.2.3/32"], True),
        ("169.254.169.254", ["169.254.169.254/32"], True),
        ("127.0.0.1", ["garbage", "10.0.0.0/8"], False),
        ("fd00::5", ["fd00::/64"], True),
        ("127.0.0.1", ["::/0"], False),  # a v6 allowlist never admits a v4 address
    ],
)
def test_allowlist(ip: str, allowlist: list[str], allow: bool) -> None:
    assert check_address(ip, allowlist).allow is allow


def test_metadata_reason_is_specific() -> None:
    d = check_address("169.254.169.254")
    assert "metadata" in d.reason
    # The hint names this address, and doing what it says admits it (and only it).
    assert "`169.254.169.254/32` to ssrf_ip_allowlist" in d.hint, d.hint
    assert check_address("169.254.169.254", ["169.254.169.254/32"]).allow
    assert not check_address("169.254.169.253", ["169.254.169.254/32"]).allow


def test_garbage_types_do_not_raise() -> None:
    assert not check_address(None).allow  # type: ignore[arg-type]
