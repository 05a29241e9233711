"""A webhook owed survives a SIGKILL of the server: the outbox is in the database."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from photos import photo_bytes
from server import Server
from service_api import FAKE_ROUTE, fake_catalog, free_port, receiver, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
FAST = {
    "I2V_WEBHOOK_POLL_SECONDS": "0.05",
    "I2V_WEBHOOK_RETRY_SECONDS": "0.1",
    "I2V_WEBHOOK_TIMEOUT_SECONDS": "2",
    "I2V_ALLOW_WEBHOOKS": "127.0.0.1",  # the receiver here; --allow-fetch does not count
}


def test_a_webhook_owed_survives_a_crash_of_the_server(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    port = free_port()  # nothing listens there yet: every attempt fails to connect
    server = start_server(
        catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]), extra_env=FAST
    )
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
