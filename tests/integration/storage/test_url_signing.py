from __future__ import annotations

import stat
import threading
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from i2v.storage import UrlSigner, load_or_create_secret

SECRET = b"s" * 32
KEY = "5f0c8e7d2a1b4c3d9e8f7a6b5c4d3e2f/1.mp4"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_signed_key_verifies_and_never_expires_without_ttl() -> None:
    clock = Clock()
    signer = UrlSigner(SECRET, clock=clock)
    token = signer.sign(KEY)
    query = parse_qs(token)
    assert query["exp"] == ["0"]
    assert "=" not in query["sig"][0]  # urlsafe base64 without padding
    assert signer.verify(KEY, token)
    assert signer.verify(KEY, "?" + token)
    clock.now += 10 * 365 * 86400
    assert signer.verify(KEY, token)


def test_signature_binds_key_expiry_and_secret() -> None:
    clock = Clock()
    signer = UrlSigner(SECRET, ttl_seconds=60, clock=clock)
    exp, iat, sig = signer.sign_parts(KEY)
    assert exp == int(clock.now) + 60
    assert iat == int(clock.now)
    assert signer.check(KEY, exp=str(exp), sig=sig, iat=str(iat))
    assert not signer.check(KEY.replace("1.mp4", "2.mp4"), exp=exp, sig=sig, iat=iat)
    assert not signer.check(KEY, exp=exp + 3600, sig=sig, iat=iat)  # extended expiry
    assert not signer.check(KEY, exp=0, sig=sig, iat=iat)  # "never" expiry
    assert not signer.check(KEY, exp=exp, sig=sig, iat=iat + 30)  # younger issue time
    assert not signer.check(KEY, exp=exp, sig=sig)  # iat dropped
    assert not UrlSigner(b"t" * 32, clock=clock).check(KEY, exp=exp, sig=sig, iat=iat)
    bad = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    assert not signer.check(KEY, exp=exp, sig=bad, iat=iat)


def test_expired_urls_are_refused() -> None:
    clock = Clock()
    signer = UrlSigner(SECRET, ttl_seconds=60, clock=clock)
    token = signer.sign(KEY)
    clock.now += 60
    assert signer.verify(KEY, token)
    clock.now += 1
    assert not signer.verify(KEY, token)


@pytest.mark.parametrize(
    "token", ["", "exp=0", "sig=abc", "exp=x&sig=abc", "exp=-5&sig=a", "exp=0&exp=0&sig=a"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert not UrlSigner(SECRET).verify(KEY, token)


def test_missing_parts_are_refused() -> None:
    signer = UrlSigner(SECRET)
    _, _, sig = signer.sign_parts(KEY)
    assert not signer.check(KEY, exp=None, sig=sig)
    assert not signer.check(KEY, exp=0, sig=None)
    assert not signer.check(KEY, exp=0, sig="ä")


def test_weak_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="url_secret"):
        UrlSigner(b"short")
    with pytest.raises(ValueError, match="url_ttl_seconds"):
        UrlSigner(SECRET, ttl_seconds=-1)


def test_secret_file_is_created_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "data" / "url-secret"
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_or_create_secret(path)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert len(results[0]) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == results[0]
