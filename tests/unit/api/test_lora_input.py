"""Request LoRAs: only paths from the route's `lora_allowlist`; anything else is a 400
naming the field and the rule, and nothing is stored."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from i2v.api.submission import check_loras
from i2v.domain.catalog import Route
from i2v.domain.errors import InputError
from i2v.domain.job import Lora
from inprocess import InProcess
from photos import photo_bytes
from service_api import fake_catalog

LORA_ROUTE = "test/fake-lora"
ALLOWED = "loras/style.safetensors"
IMAGE = base64.b64encode(photo_bytes()).decode()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    root = tmp_path_factory.mktemp("lora-input")
    catalog = fake_catalog(
        root / "catalog.toml",
        frames=[11],
        fps=2,
        **{
            LORA_ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [11],
                "fps": 2,
                "inputs": ["loras"],
                "options": {"lora_allowlist": [ALLOWED]},
            }
        },
    )
    with InProcess(root / "data", catalog=catalog, workers=0) as api:
        yield api


def _post(api: InProcess, loras: list[dict[str, object]]) -> tuple[int, dict[str, object]]:
    r = api.client().post(
        f"/api/v3/{LORA_ROUTE}", json={"prompt": "a cat", "image": IMAGE, "loras": loras}
    )
    return r.status_code, r.json()


def test_allowlisted_lora_is_accepted_and_stored(api: InProcess) -> None:
    status, body = _post(api, [{"path": ALLOWED, "scale": 0.5}])
    assert status == 200, body
    data = body["data"]
    assert isinstance(data, dict)
    assert api.store.predictions.get(str(data["id"])).spec.loras == (Lora(ALLOWED, 0.5),)


def test_unknown_lora_path_is_400_naming_field_and_rule(api: InProcess) -> None:
    status, body = _post(api, [{"path": ALLOWED}, {"path": "/etc/passwd", "scale": 1.0}])
    assert status == 400, body
    message = str(body["message"])
    assert "loras[1].path" in message
    assert "/etc/passwd" in message
    assert "allowlist" in message


def test_lora_scale_and_count_limits(api: InProcess) -> None:
    assert _post(api, [{"path": ALLOWED, "scale": 5.0}])[0] in (400, 422)
    assert _post(api, [{"path": ALLOWED}] * 5)[0] in (400, 422)
    assert _post(api, [{"path": ALLOWED, "rank": 4}])[0] in (400, 422)


def test_route_without_loras_input_ignores_them(api: InProcess) -> None:
    r = api.client().post(
        "/api/v3/test/fake", json={"prompt": "a cat", "image": IMAGE, "loras": [{"path": ALLOWED}]}
    )
    # WaveSpeed bodies are lenient: the undeclared input is dropped and named, never applied
    assert r.status_code == 200, r.text
    assert "loras" in r.headers["X-I2V-Ignored-Inputs"]


def test_check_loras_without_allowlist(tmp_path: Path) -> None:
    route = Route(path="x/y", engine="fake", options={})
    check_loras(route, ())
    with pytest.raises(InputError, match=r"loras\[0\]\.path"):
        check_loras(route, (Lora("a.safetensors"),))


def test_runcomfy_dialect_checks_the_allowlist_too(api: InProcess) -> None:
    client = api.client()
    body = {"prompt": "a cat", "image_urls": [IMAGE]}
    bad = client.post(f"/v1/models/{LORA_ROUTE}", json=body | {"loras": [{"path": "x.bin"}]})
    assert bad.status_code == 400, bad.text
    assert "loras[0].path" in bad.text
    good = client.post(f"/v1/models/{LORA_ROUTE}", json=body | {"loras": [{"path": ALLOWED}]})
    assert good.status_code in (200, 201, 202), good.text
