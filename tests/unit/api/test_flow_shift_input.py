"""`flow_shift`: an optional input a route may declare, checked at the edge and carried
to the engine in the job spec."""

from __future__ import annotations

import base64
from collections.abc import Callable

from inprocess import InProcess
from photos import photo_bytes

ROUTE = "test/flow-shift"
IMAGE = base64.b64encode(photo_bytes()).decode()


def test_a_declared_flow_shift_is_checked_and_reaches_the_job_spec(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(
        workers=0,
        routes={
            ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [9],
                "inputs": ["flow_shift"],
            }
        },
    )
    client = api.client()
    body = {"prompt": "a slow push in", "image": IMAGE, "seed": 3}

    too_big = client.post(f"/api/v3/{ROUTE}", json=body | {"flow_shift": 31})
    assert too_big.status_code == 400
    assert "flow_shift: input should be less than or equal to 30" in too_big.json()["message"]

    good = client.post(f"/api/v3/{ROUTE}", json=body | {"flow_shift": 5.0})
    assert good.status_code == 200, good.text
    spec = api.store.predictions.get(good.json()["data"]["id"]).spec
    assert spec.flow_shift == 5.0

    unset = client.post(f"/api/v3/{ROUTE}", json=body)
    assert api.store.predictions.get(unset.json()["data"]["id"]).spec.flow_shift is None
