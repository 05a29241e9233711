from __future__ import annotations

import ipaddress

import pytest

from i2v.intake.address import Allowlist, is_public, problem, unwrap


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "198.18.0.1",
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "169.254.169.254",
        "100.100.100.200",  # Alibaba metadata
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::ffff:100.64.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::1",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible
        "::7f00:1",
        "2001:db8::1",  # documentation
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(address)
    assert problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(address)


def test_metadata_and_cgnat_have_their_own_reasons() -> None:
    assert problem(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert problem(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) == "a cloud metadata address"
    assert problem(ipaddress.ip_address("fd00:ec2::254")) == "a cloud metadata address"
    assert problem(ipaddress.ip_address("100.100.100.200")) == "a cloud metadata address"
    assert problem(ipaddress.ip_address("100.64.3.4")) == "a carrier-grade NAT address"
    assert problem(ipaddress.ip_address("10.0.0.1")) == "not a public address"


def test_unwrap_forms() -> None:
    v4 = ipaddress.IPv4Address("169.254.169.254")
    for wrapped in (
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::a9fe:a9fe",
    ):
        assert unwrap(ipaddress.ip_address(wrapped)) == v4
    plain = ipaddress.ip_address("2606:4700::1")
    assert unwrap(plain) == plain
    assert unwrap(ipaddress.ip_address("::1")) == ipaddress.ip_address("::1")


def test_allowlist_parsing() -> None:
    allow = Allowlist.parse(["127.0.0.1", "10.0.0.0/8", "LocalHost.", " ", "[::1]", "minio"])
    assert allow.allows_host("localhost", 80)
    assert allow.allows_host("MINIO", 9000)
    assert not allow.allows_host("example.com", 80)
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"), 80)
    assert allow.allows_address(ipaddress.ip_address("10.20.30.40"), 80)
    assert allow.allows_address(ipaddress.ip_address("::1"), 80)
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.2"), 80)
