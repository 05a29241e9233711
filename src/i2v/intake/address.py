"""Which IP addresses a server-side fetch may connect to.

`ipaddress.is_global` alone is not enough (verified on CPython 3.11.7): NAT64
(`64:ff9b::a9fe:a9fe`), 6to4 (`2002:a9fe:a9fe::`) and IPv4-compatible (`::a9fe:a9fe`) forms of
169.254.169.254 all report `is_global`. So IPv6 addresses that embed an IPv4 address are
unwrapped first, IPv6 must be global unicast (2000::/3), and the IPv4 (embedded or not) must be
global, which also excludes CGNAT 100.64.0.0/10 (home of Alibaba's metadata service).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, compatible), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return address


def problem(address: IPAddress) -> str | None:
    """Why a fetch must not connect to `address`, or None when it is a public address."""
    inner = unwrap(address)
    if address in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(inner, ipaddress.IPv4Address):
        if inner in _CGNAT:
            return "a carrier-grade NAT address"
        if not inner.is_global or inner.is_multicast:
            return "not a public address"
        return None
    if inner in _NAT64_LOCAL or inner not in _GLOBAL_UNICAST_V6:
        return "not a public address"
    if not inner.is_global or inner.is_multicast:
        return "not a public address"
    return None


def is_public(address: str | IPAddress) -> bool:
    """True when a fetch may connect to `address` without an operator allowlist."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    return problem(address) is None


@dataclass(frozen=True)
class Allowlist:
    """Operator-approved hosts (exact names) and networks that skip the public-address rule."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)
