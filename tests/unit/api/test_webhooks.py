"""Webhooks: the app's sender posts to a real receiver on loopback.

WaveSpeed-dialect hooks are checked against WaveSpeed's documented signing; RunComfy-dialect
hooks with the Standard Webhooks library itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from i2v.delivery.retry import RetryPolicy
from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, OTHER_KEY, RC_ROUTE, receiver, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
FAST: dict[str, Any] = {
    "webhook_poll_seconds": 0.05,
    "webhook_retry_seconds": 0.1,
    "webhook_timeout_seconds": 2,  # a lost send is retried after its 9 s lease
    "allow_webhooks": ["127.0.0.1"],  # the receivers here; allow_fetch does not count
}


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
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(**FAST)
    client = api.client()
    with receiver() as hook:
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
        other = api.client(OTHER_KEY)
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
        assert payload["urls"]["get"] == f"{api.base_url}/api/v3/predictions/{pid}/result"
        shown = client.get(f"/api/v3/predictions/{pid}").json()["data"]
        shown.pop("webhook")  # where the hook stands: for its owner, not in the hook
        assert payload == shown | {"outputs": payload["outputs"]}  # URLs are signed per view
        video = api.client(None).get(payload["outputs"][0])
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
    start_api: Callable[..., InProcess],
) -> None:
    broken = {"engine": "fake", "frames": [9], "options": {"fail_at": 2}}
    api = start_api(routes={"test/broken": broken}, **FAST)
    client = api.client()
    with receiver(codes=[503, 500]) as hook:
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
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(**FAST)
    client = api.client()
    with receiver() as hook:
        r = client.post(
            f"/v1/models/{RC_ROUTE}",
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
        assert payload["output"]["video"].startswith(f"{api.base_url}/media/")
        forged = {**headers, "webhook-id": "someone-else"}
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, forged)


@pytest.mark.parametrize(
    ("webhook", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        # allow_fetch 127.0.0.1 (images) is given to every test app; webhooks need
        # their own grant, so loopback stays refused here.
        ("http://127.0.0.1:9/hook", "not a public address"),
    ],
)
def test_a_webhook_to_a_private_address_is_given_up_at_once(
    start_api: Callable[..., InProcess], webhook: str, reason: str
) -> None:
    api = start_api(**{**FAST, "allow_webhooks": []})
    client = api.client()
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


def test_a_receiver_that_hangs_does_not_hold_up_other_webhooks(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(**FAST)
    client = api.client()
    with receiver(hold=6) as slow, receiver() as fast:
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


def test_one_keys_hanging_receiver_does_not_delay_another_keys_webhook(
    start_api: Callable[..., InProcess],
) -> None:
    """32 deliveries of one key to a receiver that never answers in time take at most a
    quarter of the 16 slots; another key's delivery goes out at the next poll, well within
    one timeout (oldest-first over 16 shared slots made it wait two)."""
    api = start_api(**FAST)
    client, other = api.client(), api.client(OTHER_KEY)
    timeout = FAST["webhook_timeout_seconds"]
    with receiver(hold=3 * timeout) as hanging, receiver() as fast:
        for _ in range(32):
            r = client.post(
                f"/api/v3/{FAKE_ROUTE}",
                params={"webhook": hanging.url},
                json={"prompt": "p", "image": IMAGE},
            )
            assert r.status_code == 200, r.text
        hanging.wait_for(4)  # the hanging key's sends are in flight
        r = other.post(
            f"/api/v3/{FAKE_ROUTE}",
            params={"webhook": fast.url},
            json={"prompt": "p", "image": IMAGE},
        )
        assert r.status_code == 200, r.text
        wait_done(other, r.json()["data"]["id"])
        started = time.monotonic()
        fast.wait_for(1, timeout=timeout)
        assert time.monotonic() - started < timeout
        assert hanging.answered == 0  # every send of the hanging key is still held
