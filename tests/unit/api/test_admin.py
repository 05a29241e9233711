"""The operator page: only admin keys read the overview; the page itself is a static
shell under a strict CSP that loads nothing from elsewhere."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable

from i2v.api.auth import hash_key
from inprocess import InProcess
from photos import photo_bytes
from service_api import API_KEY, FAKE_ROUTE, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
ADMIN_KEY = "i2v_test-admin-key"
FAILING = "test/failing"


def test_overview_for_admin_keys_only(start_api: Callable[..., InProcess]) -> None:
    api = start_api(
        routes={
            FAILING: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [9],
                "options": {"fail_at": 1},
            }
        }
    )
    api.store.keys.add(hash_key(ADMIN_KEY), name="ops", prefix=ADMIN_KEY[:8], admin=True)
    client = api.client()
    done = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE})
    failed = client.post(f"/api/v3/{FAILING}", json={"prompt": "p", "image": IMAGE})
    assert wait_done(client, done.json()["data"]["id"])["status"] == "completed"
    failed_id = failed.json()["data"]["id"]
    assert wait_done(client, failed_id)["status"] == "failed"

    assert api.client(key=None).get("/api/admin/overview").status_code == 401
    refused = client.get("/api/admin/overview")  # a valid key, but not an admin's
    assert refused.status_code == 403
    assert "not an admin key" in refused.json()["message"]

    r = api.client(key=ADMIN_KEY).get("/api/admin/overview")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["queue"] == []
    assert data["queued_total"] == 0
    assert data["running"] == []
    assert data["last_hour_total"] == 2
    assert {"route": FAKE_ROUTE, "succeeded": 1, "failed": 0, "cancelled": 0} in data["last_hour"]
    assert {"route": FAILING, "succeeded": 0, "failed": 1, "cancelled": 0} in data["last_hour"]
    (failure,) = data["failures"]
    assert failure["id"] == failed_id
    assert failure["route"] == FAILING
    assert "fake engine failed at frame 1" in failure["error"]
    assert failure["key_id"] == hash_key(API_KEY)[:12]
    assert API_KEY not in r.text


def test_queue_and_running_predictions(start_api: Callable[..., InProcess]) -> None:
    # One slow route keeps the single worker busy while two more wait.
    api = start_api(frame_delay=0.2)
    api.store.keys.add(hash_key(ADMIN_KEY), name="ops", prefix=ADMIN_KEY[:8], admin=True)
    client = api.client()
    ids = [
        client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE}).json()["data"][
            "id"
        ]
        for _ in range(3)
    ]
    admin = api.client(key=ADMIN_KEY)
    data = admin.get("/api/admin/overview").json()["data"]
    deadline = time.monotonic() + 30
    while not data["running"]:  # until the worker has claimed the first
        assert time.monotonic() < deadline, data
        time.sleep(0.02)
        data = admin.get("/api/admin/overview").json()["data"]
    (running,) = data["running"]
    assert running["id"] == ids[0]
    assert running["worker"]
    assert running["attempt"] == 1
    assert 0 <= running["progress"] <= 1
    assert data["queue"] == [{"route": FAKE_ROUTE, "queued": 2}]
    for pid in ids:
        client.post(f"/v1/requests/{pid}/cancel")


def test_page_is_static_and_strict(api: InProcess) -> None:
    r = api.client(key=None).get("/admin")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    # No inline script or style, nothing from another host.
    assert re.search(r"<script>|<style|\sstyle=|\son\w+=", r.text) is None
    assert re.search(r"(src|href)=\"(https?:)?//", r.text) is None
    for asset in ("/static/admin.js", "/static/admin.css"):
        assert asset in r.text
        assert api.client(key=None).get(asset).status_code == 200
