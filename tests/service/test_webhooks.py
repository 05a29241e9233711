"""Webhooks over real HTTP: a real `i2v serve` posts to a real receiver on loopback.

WaveSpeed-dialect hooks are checked against WaveSpeed's documented signing; RunComfy-dialect
hooks with the Standard Webhooks library itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from i2v.api.webhooks import RetryPolicy
from photos import photo_bytes
from server import FAKE_ROUTE, OTHER_KEY, Server, fake_catalog, free_port, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
FAST = {
    "I2V_WEBHOOK_POLL_SECONDS": "0.05",
    "I2V_WEBHOOK_RETRY_SECONDS": "0.1",
    "I2V_WEBHOOK_TIMEOUT_SECONDS": "2",  # a lost send is retried after its 9 s lease
    "I2V_ALLOW_WEBHOOKS": "127.0.0.1",  # the receivers here; --allow-fetch does not count
}


class Receiver:
    """Records every POST; answers each with the next status in `codes` (then 200)."""

    def __init__(self, port: int, codes: list[int] | None = None, hold: float = 0.0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.codes = list(codes or [])
        self.answered = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(hold)  # a receiver slower than the sender's timeout
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered += 1

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            assert time.monotonic() < deadline, f"{len(self.calls)} of {n} webhook calls"
            time.sleep(0.02)
        return self.calls

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def receiver(
    codes: list[int] | None = None, port: int | None = None, hold: float = 0.0
) -> Iterator[Receiver]:
    r = Receiver(port or free_port(), codes, hold)
    try:
        yield r
    finally:
        r.close()


def hook_state(
    client: httpx.Client, pid: str, until: Callable[[dict[str, Any]], bool] = lambda w: True
) -> dict[str, Any]:
    """The prediction's `webhook` field (GET /api/v3/predictions/{id}), once `until` holds."""
    deadline = time.monotonic() + 30
    while True:
        state: dict[str, Any] = client.get(f"/api/v3/predictions/{pid}").json()["data"]["webhook"]
        if until(state):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def finished(state: dict[str, Any]) -> bool:
    return state["status"] != "pending"


def wavespeed_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """WaveSpeed's documented check: HMAC-SHA256 keyed by the secret's text after whsec_."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = hmac.new(secret.removeprefix("whsec_").encode(), signed, hashlib.sha256)
    version, _, signature = headers["webhook-signature"].partition(",")
    return version == "v3" and hmac.compare_digest(signature, expected.hexdigest())


def test_wavespeed_webhook_is_signed_and_carries_the_prediction(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env=FAST)
    with receiver() as hook, server.client() as client:
        r = client.post(
            f"/api/v3/{FAKE_ROUTE}",
            params={"webhook": hook.url},
            json={"prompt": "p", "image": IMAGE, "seed": 3},
        )
        assert r.status_code == 200, r.text
        pid = r.json()["data"]["id"]
        ((headers, body),) = hook.wait_for(1)
        secret = client.get("/api/v3/webhook/secret").json()["data"]["secret"]

        assert secret.startswith("whsec_")
        with server.client(OTHER_KEY) as other:
            assert other.get("/api/v3/webhook/secret").json()["data"]["secret"] != secret
        assert headers["content-type"] == "application/json"
        assert headers["webhook-id"] == pid
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
        assert wavespeed_valid(secret, headers, body)
        assert not wavespeed_valid(secret, headers, body + b" ")

        payload = json.loads(body)  # the bare prediction, as WaveSpeed sends it
        assert "code" not in payload
        assert payload["id"] == pid
        assert payload["status"] == "completed"
        assert payload["input"]["seed"] == 3
        assert payload["urls"]["get"] == f"{server.base_url}/api/v3/predictions/{pid}/result"
        shown = client.get(f"/api/v3/predictions/{pid}").json()["data"]
        shown.pop("webhook")  # where the hook stands: for its owner, not in the hook
        assert payload == shown | {"outputs": payload["outputs"]}  # URLs are signed per view
        video = httpx.get(payload["outputs"][0])
        assert video.status_code == 200
        assert video.content[4:8] == b"ftyp"
        state = hook_state(client, pid, finished)
        assert state == {
            "url": hook.url,
            "status": "delivered",
            "attempts": 1,
            "error": "",
            "finished_at": state["finished_at"],
        }
        time.sleep(0.3)
        assert len(hook.calls) == 1  # delivered once, not again


def test_a_failed_prediction_is_told_and_retries_keep_the_webhook_id(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    catalog = fake_catalog(
        tmp_path / "catalog.toml",
        **{"test/broken": {"engine": "fake", "frames": [121], "options": {"fail_at": 2}}},
    )
    server = start_server(catalog=catalog, extra_env=FAST)
    with receiver(codes=[503, 500]) as hook, server.client() as client:
        r = client.post(
            "/api/v3/test/broken",
            params={"webhook": hook.url},
            json={"prompt": "p", "image": IMAGE},
        )
        pid = r.json()["data"]["id"]
        calls = hook.wait_for(3)
        time.sleep(0.5)
        assert len(calls) == 3  # 503, 500, then 200: done
        assert {h["webhook-id"] for h, _ in calls} == {pid}
        assert len({b for _, b in calls}) == 1  # the same event each time
        payload = json.loads(calls[-1][1])
        assert payload["status"] == "failed"
        assert "fake engine failed at frame 2" in payload["error"]
        state = hook_state(client, pid, finished)
        assert (state["status"], state["attempts"], state["error"]) == ("delivered", 3, "")


def test_runcomfy_webhook_verifies_with_the_standard_webhooks_library(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env=FAST)
    with receiver() as hook, server.client() as client:
        r = client.post(
            "/v1/models/bytedance/dreamina-3-0/pro/image-to-video",
            params={"webhook": hook.url},
            json={"prompt": "p", "image_urls": [IMAGE], "seed": 1},
        )
        assert r.status_code == 200, r.text
        rid = r.json()["request_id"]
        ((headers, body),) = hook.wait_for(1)
        secret = client.get("/api/v3/webhook/secret").json()["data"]["secret"]
        payload = Webhook(secret).verify(body, headers)
        assert payload["request_id"] == rid
        assert payload["status"] == "succeeded"
        assert payload["output"]["video"].startswith(f"{server.base_url}/media/")
        forged = {**headers, "webhook-id": "someone-else"}
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, forged)


@pytest.mark.parametrize(
    ("webhook", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        # --allow-fetch 127.0.0.1 (images) is given to every test server; webhooks need
        # their own grant, so loopback stays refused here.
        ("http://127.0.0.1:9/hook", "not a public address"),
    ],
)
def test_a_webhook_to_a_private_address_is_given_up_at_once(
    tmp_path: Path, start_server: Callable[..., Server], webhook: str, reason: str
) -> None:
    env = {k: v for k, v in FAST.items() if k != "I2V_ALLOW_WEBHOOKS"}
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env=env)
    with server.client() as client:
        r = client.post(
            f"/api/v3/{FAKE_ROUTE}",
            params={"webhook": webhook},
            json={"prompt": "p", "image": IMAGE},
        )
        pid = r.json()["data"]["id"]
        state = hook_state(client, pid, finished)
    assert (state["status"], state["attempts"]) == ("failed", 1)  # refused: no retry
    error = state["error"]
    assert webhook.split("/")[2].split(":")[0] in error
    assert reason in error


def test_a_webhook_owed_survives_a_crash_of_the_server(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    port = free_port()  # nothing listens there yet: every attempt fails to connect
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env=FAST)
    with server.client() as client:
        r = client.post(
            f"/api/v3/{FAKE_ROUTE}",
            params={"webhook": f"http://127.0.0.1:{port}/hook"},
            json={"prompt": "p", "image": IMAGE},
        )
        pid = r.json()["data"]["id"]
        assert wait_done(client, pid)["status"] == "completed"
    server.kill()
    with receiver(port=port) as hook:
        server.start()
        ((headers, body),) = hook.wait_for(1)
        assert headers["webhook-id"] == pid
        assert json.loads(body)["status"] == "completed"


def test_a_receiver_that_hangs_does_not_hold_up_other_webhooks(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env=FAST)
    with receiver(hold=6) as slow, receiver() as fast, server.client() as client:
        ids = []
        for hook in (slow, fast):
            r = client.post(
                f"/api/v3/{FAKE_ROUTE}",
                params={"webhook": hook.url},
                json={"prompt": "p", "image": IMAGE},
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["data"]["id"])
        slow.wait_for(1)
        fast.wait_for(1)
        # The slow send is still in flight (no outcome recorded, not timed out yet): the
        # fast one did not wait for it.
        state = hook_state(client, ids[0])
        assert (state["status"], state["attempts"], state["error"]) == ("pending", 1, "")
        assert slow.answered == 0


def test_retry_waits_grow_fourfold_to_a_cap_then_stop() -> None:
    policy = RetryPolicy(attempts=10, first_wait_s=5, max_wait_s=6 * 3600)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    waits = []
    for attempt in range(1, 11):
        at = policy.retry_at(attempt, t0)
        waits.append(None if at is None else (at - t0).total_seconds())
    assert waits[:5] == [5, 20, 80, 320, 1280]
    assert waits[5:9] == [5120, 20480, 6 * 3600, 6 * 3600]
    assert waits[9] is None
    assert 19 * 3600 < sum(w for w in waits if w) < 20 * 3600  # "about a day" of retrying
