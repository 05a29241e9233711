"""`/metrics` after a few predictions: each metric checked by name, labels and value."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, receiver, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
FAILING = "test/failing"
FRAMES = 9  # the fake route's first frame count: the default duration's


def samples(api: InProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of GET /metrics (no key needed), by name and label set."""
    r = api.client(key=None).get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_predictions(start_api: Callable[..., InProcess]) -> None:
    api = start_api(
        routes={
            FAILING: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [FRAMES],
                "options": {"fail_at": 2},
            }
        },
        allow_webhooks=["127.0.0.1"],
        webhook_poll_seconds=0.05,
    )
    client = api.client()
    with receiver() as hook:
        ids = []
        for seed in range(3):
            body = {"prompt": "p", "image": IMAGE, "seed": seed}
            params = {"webhook": hook.url} if seed == 0 else {}
            r = client.post(f"/api/v3/{FAKE_ROUTE}", json=body, params=params)
            assert r.status_code == 200, r.text
            ids.append(r.json()["data"]["id"])
        failing = client.post(f"/api/v3/{FAILING}", json={"prompt": "p", "image": IMAGE})
        assert failing.status_code == 200, failing.text
        for pid in ids:
            assert wait_done(client, pid)["status"] == "completed"
        assert wait_done(client, failing.json()["data"]["id"])["status"] == "failed"
        hook.wait_for(1)
        # A worker counts a job just after finishing it, the sender a delivery just after
        # recording it: poll until the last of them is in.
        deadline = time.monotonic() + 30
        while True:
            found = samples(api)
            if (
                value(found, "i2v_webhook_deliveries_total", outcome="delivered") >= 1
                and value(found, "i2v_predictions_total", route=FAILING, status="failed") >= 1
                and sum(v for (n, _), v in found.items() if n == "i2v_predictions_total") >= 4
            ):
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.02)

    assert value(found, "i2v_predictions_total", route=FAKE_ROUTE, status="succeeded") == 3
    assert value(found, "i2v_predictions_total", route=FAILING, status="failed") == 1
    assert value(found, "i2v_queue_wait_seconds_count", route=FAKE_ROUTE) == 3
    assert value(found, "i2v_queue_wait_seconds_count", route=FAILING) == 1
    for name in ("i2v_render_seconds", "i2v_encode_seconds"):
        assert value(found, f"{name}_count", route=FAKE_ROUTE, engine="fake") == 3
        assert value(found, f"{name}_sum", route=FAKE_ROUTE, engine="fake") > 0
        assert value(found, f"{name}_count", route=FAILING, engine="fake") == 0
    # Every step of the three renders, and the failing one's two before it failed.
    steps = value(found, "i2v_step_seconds_count", engine="fake", stage="rendering")
    assert steps == 3 * FRAMES + 2
    assert value(found, "i2v_workers") == 1
    assert value(found, "i2v_workers_busy") == 0
    assert value(found, "i2v_webhook_deliveries_total", outcome="delivered") == 1
    submit = {"route": f"/api/v3/{FAKE_ROUTE}", "method": "POST"}
    assert value(found, "i2v_http_requests_total", **submit, status="200") == 3
    assert value(found, "i2v_http_request_duration_seconds_count", **submit) == 3
    polled = value(
        found,
        "i2v_http_requests_total",
        route="/api/v3/predictions/{prediction_id}/result",
        method="GET",
        status="200",
    )
    assert polled >= 4


def test_queue_depth_and_unmatched_routes(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client = api.client()
    for seed in range(2):
        r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE, "seed": seed})
        assert r.status_code == 200, r.text
    assert client.get("/no/such/page").status_code == 404
    found = samples(api)
    assert value(found, "i2v_queue_depth", route=FAKE_ROUTE) == 2
    assert value(found, "i2v_workers") == 0
    assert (
        value(found, "i2v_http_requests_total", route="<unmatched>", method="GET", status="404")
        == 1
    )
