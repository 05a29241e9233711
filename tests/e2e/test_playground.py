"""The playground page in a real browser (Debian's Chromium, headless): key, photo and
prompt in, progress while it renders, a playable video out, all through the public API."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from photos import photo_bytes
from server import Server
from service_api import API_KEY, FAKE_ROUTE, fake_catalog, wait_done

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


# Drops a file on an element as a person's drag and drop would (a DataTransfer with it).
DROP = """([selector, b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  document.querySelector(selector).dispatchEvent(
    new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


def drop(page: Page, selector: str, data: bytes, name: str, kind: str) -> None:
    page.evaluate(DROP, [selector, base64.b64encode(data).decode(), name, kind])


def shot(page: Page, name: str) -> None:
    """With I2V_SCREENSHOTS=DIR (`make screenshots`), keep the page as it is now, for docs."""
    folder = os.environ.get("I2V_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def status_text(page: Page) -> str:
    return page.text_content("#status") or ""


def test_the_whole_flow_in_the_browser(
    tmp_path: Path, start_server: Callable[..., Server], page: Page
) -> None:
    # 121 frames at 0.02 s: a render takes a few seconds, long enough to queue behind.
    server = start_server(
        catalog=fake_catalog(tmp_path / "catalog.toml", frame_delay=0.02, frames=[121, 241])
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/media/upload" in r.url else None)
    api = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    )
    image = base64.b64encode(photo_bytes()).decode()

    def block() -> str:
        """A prediction submitted around the page, which the page's own queues behind."""
        r = api.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": image})
        return str(r.json()["data"]["id"])

    # Without a key: a clear prompt for one, and no models.
    page.goto(server.base_url + "/")
    assert page.is_visible("#key-hint")
    shot(page, "1-key")
    assert page.eval_on_selector_all("#model option", "os => os.length") == 0
    page.fill("#key", API_KEY)
    page.dispatch_event("#key", "change")
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 1")
    assert page.is_hidden("#key-hint")

    # The route's own inputs, drawn from its schema.
    page.select_option("#model", FAKE_ROUTE)
    assert page.is_visible("#in-aspect_ratio")
    assert "16:9" in page.eval_on_selector_all(
        "#in-aspect_ratio option", "os => os.map(o => o.value)"
    )
    assert page.get_attribute("#in-camera_fixed", "type") == "checkbox"
    shot(page, "2-model-inputs")

    # A photo that breaks a rule is refused before any upload.
    drop(page, "#drop", photo_bytes(300, 400, fmt="PNG"), "small.png", "image/png")
    page.wait_for_selector("#photo-error:not([hidden])")
    assert "shortest side must be more than 320 pixels, got 300" in page.text_content(
        "#photo-error"
    )
    assert page.is_disabled("#go")
    shot(page, "3-photo-refused")
    drop(page, "#drop", photo_bytes(), "photo.jpg", "image/jpeg")
    page.wait_for_selector("#photo-error", state="hidden")
    assert page.is_visible("#preview")
    page.fill("#prompt", "slow push in")
    assert page.text_content("#prompt-count") == "12/800"
    page.check("#in-camera_fixed")
    page.fill("#seed", "7")
    assert uploads == []
    shot(page, "4-ready")

    # Submitted behind two others: its queue position, then progress, then the video.
    blockers = [block(), block()]
    page.click("#go")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('ahead in the queue')"
    )
    shot(page, "5-queued")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('processing')",
        timeout=60_000,
    )
    page.wait_for_function("() => document.getElementById('progress').value > 0", timeout=60_000)
    shot(page, "6-rendering")
    page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=60_000)
    assert page.eval_on_selector("#video", "v => v.duration") == pytest.approx(121 / 24, abs=0.1)
    assert status_text(page).startswith("completed")
    shot(page, "7-video-and-code")
    page.click("#seed-random")
    assert page.input_value("#seed") == "-1"
    page.click("#seed-reuse")
    assert page.input_value("#seed") == "7"

    # The request as code, exact: the curl snippet, run as is, creates a prediction.
    curl = page.text_content("#code-curl") or ""
    assert f"{server.base_url}/api/v3/{FAKE_ROUTE}" in curl
    assert API_KEY not in curl
    env = {**os.environ, "I2V_API_KEY": API_KEY}
    ran = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=60)
    created = json.loads(ran.stdout)
    assert created["code"] == 200, ran.stdout
    copied = api.get(f"/api/v3/predictions/{created['data']['id']}").json()["data"]
    assert copied["input"]["seed"] == 7
    assert copied["input"]["camera_fixed"] is True
    assert copied["input"]["prompt"] == "slow push in"
    # So does the Python one, with the WaveSpeed SDK, which waits for the video.
    python = page.text_content("#code-python") or ""
    ran = subprocess.run(
        [sys.executable, "-c", python], env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().startswith(f"{server.base_url}/media/")
    assert "baseUrl" in (page.text_content("#code-js") or "")

    # A second run, cancelled while it waits.
    blockers.append(block())
    page.click("#go")
    page.wait_for_selector("#cancel:not([hidden])")
    page.click("#cancel")
    page.wait_for_function(
        "() => document.getElementById('error').textContent.startsWith('cancelled')",
        timeout=60_000,
    )
    assert page.is_hidden("#cancel")

    # History: a poster frame for each finished prediction.
    for pid in [*blockers, created["data"]["id"]]:
        wait_done(api, pid)
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#history li').length >= 5")
    assert page.eval_on_selector_all("#history li video", "vs => vs.length") >= 4
    shot(page, "8-history")
    api.close()
    assert errors == []


STORED_KEY = "() => [sessionStorage.getItem('i2v.key'), localStorage.getItem('i2v.key')]"


def test_the_key_stays_with_the_tab_unless_remembered(
    tmp_path: Path, start_server: Callable[..., Server], page: Page
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"))
    page.goto(server.base_url + "/")
    assert not page.is_checked("#remember")
    page.fill("#key", API_KEY)
    page.dispatch_event("#key", "change")
    assert page.evaluate(STORED_KEY) == [API_KEY, None]  # this tab only
    page.check("#remember")
    assert page.evaluate(STORED_KEY) == [None, API_KEY]
    page.reload()
    assert page.is_checked("#remember")
    assert page.input_value("#key") == API_KEY
    page.uncheck("#remember")
    assert page.evaluate(STORED_KEY) == [API_KEY, None]
    # Another tab of the same browser has its own session: no key there.
    other = page.context.new_page()
    other.goto(server.base_url + "/")
    assert other.input_value("#key") == ""
    assert not other.is_checked("#remember")


ADMIN_KEY_STORED = (
    "() => [sessionStorage.getItem('i2v.adminKey'), localStorage.getItem('i2v.adminKey')]"
)


def test_the_admin_key_stays_with_the_tab_and_never_on_the_device(
    tmp_path: Path, start_server: Callable[..., Server], page: Page
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"))
    page.goto(server.base_url + "/admin")
    page.fill("#key", "i2v_admin_example")
    page.click("#use")
    assert page.evaluate(ADMIN_KEY_STORED) == ["i2v_admin_example", None]
    # a copy an older page kept on the device is removed when the page loads
    page.evaluate("() => localStorage.setItem('i2v.adminKey', 'old')")
    page.reload()
    assert page.evaluate(ADMIN_KEY_STORED) == ["i2v_admin_example", None]
    page.click("#forget")
    assert page.evaluate(ADMIN_KEY_STORED) == [None, None]
