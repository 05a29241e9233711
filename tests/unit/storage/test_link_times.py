"""Signed links: strict times, the issue time signed in, and a TTL that reaches old links."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from i2v.storage.signing import UrlSigner, parse_time

SECRET = b"s" * 32
KEY = "5f0c8e7d2a1b4c3d9e8f7a6b5c4d3e2f/1.mp4"
NOW = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def legacy_link(key: str, exp: int) -> str:
    """A link as signed before issue times existed: HMAC over `exp\\nkey`, no iat."""
    mac = hmac.new(SECRET, f"{exp}\n{key}".encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return f"exp={exp}&sig={sig}"


@pytest.mark.parametrize("text", ["0", "1800000000", "000123"])
def test_plain_ascii_digits_parse(text: str) -> None:
    assert parse_time(text) == int(text)


@pytest.mark.parametrize(
    "text", ["", "-0", "-5", "+5", " 5", "5 ", "0_0", "1_800_000_000", "٣", "１２", "5.0", "1e9"]
)
def test_anything_else_is_refused(text: str) -> None:
    assert parse_time(text) is None


def test_too_many_digits_are_refused() -> None:
    assert parse_time("9" * 12) == int("9" * 12)
    assert parse_time("9" * 13) is None


@pytest.mark.parametrize("exp", ["-0", "0_0", "+0", "٠", "%2B0"])
def test_links_with_odd_exp_spellings_are_refused(exp: str) -> None:
    signer = UrlSigner(SECRET, clock=Clock())
    token = signer.sign(KEY)
    sig = token.rsplit("sig=", 1)[1]
    iat = token.split("iat=")[1].split("&")[0]
    assert signer.verify(KEY, f"exp=0&iat={iat}&sig={sig}")
    assert not signer.verify(KEY, f"exp={exp}&iat={iat}&sig={sig}")


def test_every_link_carries_its_issue_time() -> None:
    token = UrlSigner(SECRET, clock=Clock()).sign(KEY)
    assert token.startswith(f"exp=0&iat={NOW}&sig=")


def test_a_ttl_turned_on_expires_links_issued_before_it() -> None:
    clock = Clock()
    token = UrlSigner(SECRET, clock=clock).sign(KEY)  # no TTL: exp=0, never expires
    clock.now += 3 * 3600
    assert UrlSigner(SECRET, clock=clock).verify(KEY, token)
    assert not UrlSigner(SECRET, ttl_seconds=3600, clock=clock).verify(KEY, token)
    assert UrlSigner(SECRET, ttl_seconds=4 * 3600, clock=clock).verify(KEY, token)


def test_a_shorter_ttl_expires_links_issued_under_a_longer_one() -> None:
    clock = Clock()
    token = UrlSigner(SECRET, ttl_seconds=86400, clock=clock).sign(KEY)
    clock.now += 7200
    assert UrlSigner(SECRET, ttl_seconds=86400, clock=clock).verify(KEY, token)
    assert not UrlSigner(SECRET, ttl_seconds=3600, clock=clock).verify(KEY, token)


def test_old_links_without_iat_keep_working_without_a_ttl() -> None:
    clock = Clock()
    signer = UrlSigner(SECRET, clock=clock)
    assert signer.verify(KEY, legacy_link(KEY, 0))
    assert signer.verify(KEY, legacy_link(KEY, NOW + 60))
    assert not signer.verify(KEY, legacy_link(KEY, NOW - 1))  # its own expiry still holds
    assert not signer.verify(KEY, legacy_link("other/1.mp4", 0))


def test_old_links_without_iat_under_a_ttl() -> None:
    signer = UrlSigner(SECRET, ttl_seconds=3600, clock=Clock())
    assert not signer.verify(KEY, legacy_link(KEY, 0))  # no expiry: age unknown, refused
    assert not signer.verify(KEY, legacy_link(KEY, NOW + 7200))  # outlives the TTL
    assert signer.verify(KEY, legacy_link(KEY, NOW + 600))  # fits: issued under this TTL


def test_a_legacy_signature_is_not_a_new_one() -> None:
    # The old message `exp\nkey` for key "123\nx" equals `exp\n123\nx`: the version prefix
    # keeps it from passing as a link for key "x" issued at 123.
    token = legacy_link("123\nx", 0)
    sig = token.rsplit("sig=", 1)[1]
    assert not UrlSigner(SECRET, clock=Clock()).verify("x", f"exp=0&iat=123&sig={sig}")


def test_repeated_iat_is_refused() -> None:
    signer = UrlSigner(SECRET, clock=Clock())
    token = signer.sign(KEY)
    assert not signer.verify(KEY, token + f"&iat={NOW}")
