"""Rows hold no input bytes: an inline image (data: URI or bare base64), in either dialect,
is stored as the prediction's input object and echoed as a short placeholder, so the row
and every GET that returns it stay small."""

from __future__ import annotations

import base64
from collections.abc import Callable

import sqlalchemy as sa

from i2v.store.tables import predictions
from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, RC_ROUTE

# A photo whose data URI is over a megabyte: what used to be stored in the row whole.
BIG = photo_bytes(1600, 1200, seed=4)
SMALL_ROW = 2_000  # characters: the echo's fields, with no image in them


def _stored_input_size(api: InProcess, prediction_id: str) -> int:
    """Characters of the row's stored `input` JSON."""
    size = sa.func.length(sa.cast(predictions.c.input, sa.Text))
    with api.store.database.read() as conn:
        return int(
            conn.execute(sa.select(size).where(predictions.c.id == prediction_id)).scalar_one()
        )


def test_runcomfy_data_uri_leaves_a_small_row(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client = api.client()
    uri = "data:image/jpeg;base64," + base64.b64encode(BIG).decode()
    assert len(uri) > 1_000_000
    r = client.post(f"/v1/models/{RC_ROUTE}", json={"prompt": "p", "image_urls": [uri]})
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    assert _stored_input_size(api, rid) < SMALL_ROW
    shown = client.get(f"/api/v3/predictions/{rid}")
    assert len(shown.content) < SMALL_ROW + 1_000
    echoed = shown.json()["data"]["input"]["image_urls"]
    assert echoed == [f"<inline image, {len(uri)} characters, stored as the input image>"]
    # The image itself is the stored input object.
    stored = api.store.predictions.get(rid)
    assert api.services.storage.get_bytes(stored.spec.image_key) == BIG


def test_wavespeed_base64_is_echoed_the_same_way(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client = api.client()
    image = base64.b64encode(BIG).decode()
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": image})
    assert r.status_code == 200, r.text
    pid = r.json()["data"]["id"]
    assert _stored_input_size(api, pid) < SMALL_ROW
    echoed = client.get(f"/api/v3/predictions/{pid}").json()["data"]["input"]
    assert echoed["image"] == f"<inline image, {len(image)} characters, stored as the input image>"
    assert echoed["prompt"] == "p"


def test_a_url_input_is_echoed_as_sent(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client = api.client()
    up = client.post(
        "/api/v3/media/upload/binary", files={"file": ("a.jpg", photo_bytes(), "image/jpeg")}
    ).json()["data"]
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": up["download_url"]})
    assert r.status_code == 200, r.text
    echoed = client.get(f"/api/v3/predictions/{r.json()['data']['id']}").json()["data"]["input"]
    assert echoed["image"] == up["download_url"]
