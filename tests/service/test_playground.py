"""The playground page in a real browser (Debian's Chromium, headless): key, photo and
prompt in, progress while it renders, a playable video out, all through the public API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from photos import photo_bytes
from server import API_KEY, FAKE_ROUTE, Server, fake_catalog

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def test_a_photo_becomes_a_playable_video_in_the_browser(
    tmp_path: Path, start_server: Callable[..., Server], page: Page
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml", frame_delay=0.01))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photo_bytes())
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(server.base_url + "/")
    page.fill("#key", API_KEY)
    page.dispatch_event("#key", "change")
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 1")
    page.select_option("#model", FAKE_ROUTE)
    assert page.eval_on_selector_all("#duration option", "os => os.map(o => o.value)") == [
        "5",
        "10",
    ]
    page.set_input_files("#photo", str(photo))
    page.fill("#prompt", "slow push in")
    page.click("#go")

    # Progress shows while it renders, then the video loads and can play.
    page.wait_for_function("() => document.getElementById('progress').value > 0", timeout=60_000)
    page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=60_000)
    duration = page.eval_on_selector("#video", "v => v.duration")
    assert duration == pytest.approx(121 / 24, abs=0.1)
    assert page.text_content("#status").startswith("completed")
    assert page.get_attribute("#download", "href").startswith(server.base_url + "/media/")
    page.wait_for_function("() => document.querySelectorAll('#history li').length >= 1")
    assert errors == []


def test_a_wrong_key_is_said_plainly(
    tmp_path: Path, start_server: Callable[..., Server], page: Page
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"))
    page.goto(server.base_url + "/")
    page.fill("#key", "not-a-key")
    page.dispatch_event("#key", "change")
    page.wait_for_selector("#error:not([hidden])")
    assert "401" in page.text_content("#error")
    assert "API key" in page.text_content("#error")


def test_the_page_and_its_assets_are_served_without_a_key(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"))
    page = httpx.get(server.base_url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/playground.js", "/static/playground.css"):
        assert httpx.get(server.base_url + asset).status_code == 200
    assert httpx.get(server.base_url + "/static/nothing.js").status_code == 404
    # The page itself only at /, with its CSP: no copy to frame from elsewhere.
    assert httpx.get(server.base_url + "/static/playground.html").status_code == 404
