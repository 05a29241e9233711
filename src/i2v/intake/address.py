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


def canonical(address: IPAddress) -> IPAddress:
    """The address a socket really reaches: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, the
    plain IPv4 form a dual-stack socket uses) is that IPv4 address; anything else is itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_translated(address: IPAddress) -> bool:
    """Whether `address` is an IPv6 form that a translator or tunnel maps to an IPv4 address
    (NAT64, 6to4, IPv4-compatible, Teredo): it reaches that IPv4 address through someone
    else's gateway, so an allowlist of IPv4 destinations never covers it."""
    plain = canonical(address)
    return isinstance(plain, ipaddress.IPv6Address) and unwrap(plain) != plain


@dataclass(frozen=True)
class AllowEntry:
    """One operator allowlist entry: an exact host name or a network, with an optional port
    (`None`: any port)."""

    host: str | None
    network: IPNetwork | None
    port: int | None

    @classmethod
    def parse(cls, raw: str) -> AllowEntry:
        """`name`, `name:port`, `10.0.0.0/8`, `127.0.0.1:9000`, `::1`, `[::1]`, `[::1]:8080`,
        `[fd00::/8]:443`. `ValueError` for a port that is not 1-65535."""
        entry, port = _split_port(raw.strip())
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            return cls(host=entry.lower().rstrip("."), network=None, port=port)
        return cls(host=None, network=network, port=port)

    def allows_port(self, port: int) -> bool:
        return self.port is None or self.port == port


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        inside, bracket, rest = entry[1:].partition("]")
        if bracket and rest.startswith(":"):
            return inside, _port(rest[1:], entry)
        return inside, None
    if entry.count(":") == 1:  # a name or IPv4 with a port; bare IPv6 has two or more
        host, _, port = entry.partition(":")
        return host, _port(port, entry)
    return entry, None


def _port(text: str, entry: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"allowlist entry {entry!r}: port must be 1-65535, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Allowlist:
    """Operator-approved hosts (exact names) and networks that skip the public-address rule,
    each on one port or on any.

    Addresses are matched in canonical form (`canonical`): an IPv4 entry matches IPv4
    destinations (and their IPv4-mapped form, which is the same socket), never an IPv6
    address; a translated form (`is_translated`: NAT64, 6to4, compatible, Teredo) is never
    allowed by an entry, whatever it embeds, and is left to the public-address rule, which
    judges it by the IPv4 address inside.
    """

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        return cls(tuple(AllowEntry.parse(raw) for raw in entries if raw.strip()))

    def allows_host(self, host: str, port: int) -> bool:
        name = host.lower().rstrip(".")
        return any(e.host == name and e.allows_port(port) for e in self.entries)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        if is_translated(address):
            return False
        plain = canonical(address)
        return any(
            e.network is not None
            and e.network.version == plain.version
            and plain in e.network
            and e.allows_port(port)
            for e in self.entries
        )
