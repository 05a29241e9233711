"""Limits per key (429 + Retry-After), idempotent submits, disk pressure (507/503) and
retention (expires_at, 410 on an expired media URL), in both dialects' envelopes."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from i2v.api.media import _until_failure
from i2v.api.space import MB, DiskGuard
from i2v.domain.errors import InsufficientStorage, StorageUnavailable
from i2v.domain.retention import Retention
from i2v.store import utcnow
from i2v.worker.sweeper import Sweeper
from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, OTHER_KEY, wait_done
from service_api import RC_ROUTE as RC

IMAGE = base64.b64encode(photo_bytes()).decode()
WS_BODY = {"prompt": "p", "image": IMAGE, "seed": 1}
RC_BODY = {"prompt": "p", "image_urls": [f"data:image/jpeg;base64,{IMAGE}"], "seed": 1}


def ws(client: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(f"/api/v3/{FAKE_ROUTE}", json=body, headers=headers)


def rc(client: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(f"/v1/models/{RC}", json=body, headers=headers)


def test_over_max_queued_is_429_with_retry_after_in_both_envelopes(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(workers=0, max_queued=1)
    client = api.client()
    assert ws(client, WS_BODY).status_code == 200
    refused = ws(client, WS_BODY)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == 429
    assert "max_queued" in refused.json()["message"]
    refused = rc(client, RC_BODY)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == 429001
    assert ws(api.client(OTHER_KEY), WS_BODY).status_code == 200  # another key's own limit


def test_rate_per_minute_refuses_the_next_submit(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0, rate_per_minute=2)
    client = api.client()
    assert [ws(client, WS_BODY).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("dialect", ["wavespeed", "runcomfy"])
def test_idempotency_key_returns_the_original_or_409(
    start_api: Callable[..., InProcess], dialect: str
) -> None:
    api = start_api(workers=0)
    client = api.client()
    post, body, id_of = (
        (ws, WS_BODY, lambda r: r.json()["data"]["id"])
        if dialect == "wavespeed"
        else (rc, RC_BODY, lambda r: r.json()["request_id"])
    )
    first = post(client, body, **{"Idempotency-Key": "order-42"})
    again = post(client, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 200
    assert id_of(again) == id_of(first)
    assert api.store.predictions.queue_length() == 1
    other = post(client, {**body, "seed": 2}, **{"Idempotency-Key": "order-42"})
    assert other.status_code == 409
    assert "Idempotency-Key" in other.text
    assert id_of(first) in other.text
    assert id_of(post(client, body)) != id_of(first)  # no key: a new prediction


def test_a_nearly_full_disk_refuses_submits(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0, min_free_mb=2**40)  # more than any disk has free
    client = api.client()
    refused = ws(client, WS_BODY)
    assert refused.status_code == 507
    assert "nearly full" in refused.json()["message"]
    refused = rc(client, RC_BODY)
    assert refused.status_code == 503
    assert "nearly full" in refused.json()["error"]["message"]
    assert api.store.predictions.queue_length() == 0


def test_disk_guard_threshold(tmp_path: Path) -> None:
    free = {"bytes": 5 * MB}
    guard = DiskGuard(tmp_path, 4 * MB, free=lambda _: free["bytes"])
    guard.check()
    free["bytes"] = 3 * MB
    with pytest.raises(InsufficientStorage, match="3 MB free"):
        guard.check()


def test_expired_outputs_say_so_and_their_url_is_410(start_api: Callable[..., InProcess]) -> None:
    api = start_api(retention_hours=2)
    client = api.client()
    pid = ws(client, WS_BODY).json()["data"]["id"]
    done = wait_done(client, pid)
    assert done["status"] == "completed"
    finished = api.store.predictions.get(pid).finished_at
    assert finished is not None
    assert done["expires_at"] == (finished + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{finished.microsecond // 1000:03d}Z"
    )
    url = done["outputs"][0]
    expires = finished + timedelta(hours=2)
    assert f"exp={math.ceil(expires.timestamp())}&" in url  # the link ends with its object
    anonymous = api.client(None)
    assert anonymous.get(url).status_code == 200
    later = Sweeper(
        api.store,
        api.services.storage,
        Retention(hours=2),
        every_s=60,
        now=lambda: utcnow() + timedelta(hours=2, seconds=1),
    )
    assert later.sweep().predictions == 1
    gone = anonymous.get(url)
    assert gone.status_code == 410
    assert "expired" in gone.json()["message"]
    after = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
    assert after["outputs"] == []
    assert "deleted" in after["expired"]
    result = client.get(f"/v1/requests/{pid}/result").json()
    assert "output" not in result
    assert result["expired_at"]


def test_a_storage_failure_mid_stream_ends_the_body() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise StorageUnavailable("bucket went away")

    assert list(_until_failure(chunks(), "outputs/x/1.mp4")) == [b"first"]
