"""The operator allowlist matches canonical addresses, by version, and by port when given."""

from __future__ import annotations

import ipaddress

import pytest

from i2v.intake.address import AllowEntry, Allowlist, canonical, is_translated

LOOPBACK_FORMS = {
    "nat64": "64:ff9b::7f00:1",
    "6to4": "2002:7f00:1::",
    "ipv4-compatible": "::7f00:1",
    "teredo": "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo client 127.0.0.1
}


def allows(entries: list[str], address: str, port: int = 80) -> bool:
    return Allowlist.parse(entries).allows_address(ipaddress.ip_address(address), port)


@pytest.mark.parametrize("form", sorted(LOOPBACK_FORMS))
def test_an_allowed_ipv4_does_not_allow_its_translated_ipv6_forms(form: str) -> None:
    address = LOOPBACK_FORMS[form]
    assert is_translated(ipaddress.ip_address(address))
    assert not allows(["127.0.0.1"], address)
    assert not allows(["127.0.0.0/8"], address)
    assert not allows(["0.0.0.0/0"], address)


@pytest.mark.parametrize("form", sorted(LOOPBACK_FORMS))
def test_an_ipv6_entry_does_not_allow_translated_forms_either(form: str) -> None:
    # Even an operator allowing all of IPv6 does not get NAT64/6to4/... to loopback: the
    # form is left to the public-address rule, which judges the IPv4 inside.
    assert not allows(["::/0"], LOOPBACK_FORMS[form])


def test_the_plain_mapped_form_is_the_same_socket_as_its_ipv4() -> None:
    mapped = ipaddress.ip_address("::ffff:127.0.0.1")
    assert canonical(mapped) == ipaddress.ip_address("127.0.0.1")
    assert not is_translated(mapped)
    assert allows(["127.0.0.1"], "::ffff:127.0.0.1")
    assert not allows(["::1"], "::ffff:127.0.0.1")


def test_an_ipv4_network_matches_only_ipv4_destinations() -> None:
    assert allows(["0.0.0.0/0"], "10.1.2.3")
    assert not allows(["0.0.0.0/0"], "::1")
    assert not allows(["127.0.0.1"], "::1")
    assert allows(["::1"], "::1")
    assert not allows(["::1"], "127.0.0.1")


def test_entries_with_a_port_allow_only_that_port() -> None:
    assert allows(["127.0.0.1:9000"], "127.0.0.1", 9000)
    assert not allows(["127.0.0.1:9000"], "127.0.0.1", 9001)
    assert not allows(["127.0.0.1:9000"], "127.0.0.1", 80)
    assert allows(["[::1]:8080"], "::1", 8080)
    assert not allows(["[::1]:8080"], "::1", 8081)
    assert allows(["[fd00::/8]:443"], "fd12::5", 443)
    assert not allows(["[fd00::/8]:443"], "fd12::5", 80)
    assert allows(["10.0.0.0/8:9000", "10.0.0.0/8:9001"], "10.9.9.9", 9001)
    assert allows(["127.0.0.1"], "127.0.0.1", 6379)  # no port: any port, as before


def test_host_entries_with_and_without_port() -> None:
    allow = Allowlist.parse(["minio:9000", "LocalHost."])
    assert allow.allows_host("MINIO", 9000)
    assert not allow.allows_host("minio", 9001)
    assert allow.allows_host("localhost.", 1234)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1/32", None)),
        ("127.0.0.1:9000", ("127.0.0.1/32", 9000)),
        ("::1", ("::1/128", None)),
        ("[::1]", ("::1/128", None)),
        ("[::1]:8080", ("::1/128", 8080)),
        ("fd00::/8", ("fd00::/8", None)),
        ("10.0.0.0/8:443", ("10.0.0.0/8", 443)),
    ],
)
def test_entry_parsing(raw: str, expected: tuple[str, int | None]) -> None:
    entry = AllowEntry.parse(raw)
    assert (str(entry.network), entry.port) == expected
    assert entry.host is None


@pytest.mark.parametrize("raw", ["127.0.0.1:0", "127.0.0.1:65536", "[::1]:http", "a:-1", "b:+80"])
def test_bad_ports_are_refused_at_parse_time(raw: str) -> None:
    with pytest.raises(ValueError, match="port must be 1-65535"):
        AllowEntry.parse(raw)
