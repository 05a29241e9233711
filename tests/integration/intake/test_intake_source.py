from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from i2v.domain.errors import InputError
from i2v.intake.source import parse_inline, require_url


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()
B64 = base64.b64encode(PNG).decode()


def test_data_uri_is_decoded() -> None:
    assert parse_inline(f"data:image/png;base64,{B64}", "image") == PNG
    assert parse_inline(f"  DATA:image/jpeg;BASE64,{B64}\n", "image") == PNG


def test_data_uri_tolerates_wrapping_missing_padding_and_urlsafe() -> None:
    wrapped = "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))
    assert parse_inline(f"data:image/png;base64,{wrapped}", "image") == PNG
    assert parse_inline(f"data:image/png;base64,{B64.rstrip('=')}", "image") == PNG
    urlsafe = base64.urlsafe_b64encode(PNG).decode()
    assert parse_inline(f"data:image/png;base64,{urlsafe}", "image") == PNG


def test_bad_base64_in_data_uri_names_the_field() -> None:
    with pytest.raises(InputError) as info:
        parse_inline("data:image/png;base64,@@@not-base64@@@", "last_image")
    assert info.value.message.startswith("last_image: data: URI is not valid base64")
    assert info.value.field == "last_image"


def test_data_uri_without_comma_or_with_a_non_image_type() -> None:
    with pytest.raises(InputError, match=r"^image: data: URI must look like"):
        parse_inline("data:image/png;base64", "image")
    with pytest.raises(InputError, match=r"^image: data: URI must carry an image, got media"):
        parse_inline(f"data:text/html;base64,{B64}", "image")


def test_percent_encoded_data_uri() -> None:
    assert parse_inline("data:image/svg+xml,%3Csvg%2F%3E", "image") == b"<svg/>"


def test_bare_base64_with_image_magic_is_inline() -> None:
    assert parse_inline(B64, "image") == PNG


def test_bare_base64_without_image_magic_is_not_inline() -> None:
    text = base64.b64encode(b"just some words, not an image at all").decode()
    assert parse_inline(text, "image") is None


def test_long_broken_base64_is_an_error() -> None:
    broken = B64.rstrip("=")
    while len(broken) % 4 != 1:  # no valid base64 has this length
        broken += "A"
    with pytest.raises(InputError, match=r"^image: is not valid base64"):
        parse_inline(broken, "image")


def test_urls_are_not_inline() -> None:
    for url in ("https://example.com/a.png", "http://x/y", "ftp://example.com/a"):
        assert parse_inline(url, "image") is None


def test_require_url_accepts_http_and_https() -> None:
    assert require_url(" https://example.com/a.png ", "image") == "https://example.com/a.png"
    assert require_url("http://127.0.0.1:8000/x?y=1", "image") == "http://127.0.0.1:8000/x?y=1"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("ftp://example.com/a.png", ""),
        ("file:///etc/passwd", ""),
        ("gopher://x", ""),
        ("/relative/path.png", ""),
        ("example.com/a.png", ""),
        ("http:///a.png", " (it has no host)"),
        ("http://exa mple.com/", " (it contains spaces or control characters)"),
        ("http://example.com:99999/", " (Port out of range 0-65535)"),
    ],
)
def test_require_url_refusals(value: str, detail: str) -> None:
    with pytest.raises(InputError) as info:
        require_url(value, "image")
    assert info.value.message == (
        f"image: must be an absolute http(s) URL, a data: URI or base64, got {value!r}{detail}"
    )


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(InputError) as info:
        require_url("ftp://" + "a" * 200, "image")
    assert "..." in info.value.message
    assert len(info.value.message) < 150
