"""Operating a real deployment: JSON log lines from `i2v serve` (uvicorn's access log
included, the key never), and an `i2v worker` process serving its own metrics."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from photos import photo_bytes
from server import Server
from service_api import API_KEY, FAKE_ROUTE, fake_catalog, free_port, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()


def json_lines(path: Path) -> list[dict[str, Any]]:
    # The server's own start-up banner is for people; every log record is a JSON line.
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples a metrics endpoint serves, by name and labels; none while it is down."""
    try:
        text = httpx.get(url).text
    except httpx.TransportError:
        return {}  # not listening yet
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_json_logs(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    server = start_server(
        "data",
        catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]),
        extra_env={"I2V_LOG_FORMAT": "json"},
    )
    with server.client() as client:
        r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE})
        pid = r.json()["data"]["id"]
        assert wait_done(client, pid)["status"] == "completed"
    # `i2v serve` runs its workers in the API process: their job metrics are on /metrics.
    done = (("route", FAKE_ROUTE), ("status", "succeeded"))
    deadline = time.monotonic() + 30
    while samples(f"{server.base_url}/metrics").get(("i2v_predictions_total", done)) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.stop()

    text = server.log.read_text()
    assert API_KEY not in text
    lines = json_lines(server.log)
    key_id = hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
    by_event = {line.get("event"): line for line in lines if line.get("prediction_id") == pid}
    submitted, claimed, finished = by_event["submitted"], by_event["claimed"], by_event["finished"]
    assert submitted["route"] == FAKE_ROUTE
    assert submitted["key_id"] == key_id
    assert submitted["duration_s"] >= 0
    assert claimed["attempt"] == 1
    assert claimed["queue_s"] >= 0
    assert finished["status"] == "succeeded"
    assert finished["key_id"] == key_id
    assert finished["attempt"] == 1
    assert finished["duration_s"] > 0
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    submit_line = next(line for line in access if line["path"] == f"/api/v3/{FAKE_ROUTE}")
    assert submit_line["method"] == "POST"
    assert submit_line["http_status"] == 200
    assert {"time", "level", "message"} <= set(submit_line)


def test_worker_process_serves_its_metrics(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(
        "data", catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]), workers=0
    )
    port = free_port()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "i2v",
            "worker",
            "--data-dir",
            str(server.data_dir),
            "--metrics-port",
            str(port),
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with server.client() as client:
            ids = [
                client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE}).json()[
                    "data"
                ]["id"]
                for _ in range(2)
            ]
            for pid in ids:
                assert wait_done(client, pid)["status"] == "completed"
        # The worker counts a job just after finishing it: poll until both are in.
        done = (("route", FAKE_ROUTE), ("status", "succeeded"))
        deadline = time.monotonic() + 30
        while True:
            found = samples(f"http://127.0.0.1:{port}/metrics")
            if found.get(("i2v_predictions_total", done)) == 2:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert found[("i2v_workers", ())] == 1
        # The API process exports the queue and requests; the worker only its jobs.
        api = httpx.get(f"{server.base_url}/metrics").text
        assert "i2v_http_requests_total" in api
        assert "i2v_predictions_total{" not in api
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_admin_key_from_the_cli(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    server = start_server("data", catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]))
    data_dir = ["--data-dir", str(server.data_dir)]
    created = subprocess.run(
        [sys.executable, "-m", "i2v", "keys", "create", "--name", "ops", "--admin", *data_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    admin_key = created.stdout.strip().splitlines()[-1]
    listed = subprocess.run(
        [sys.executable, "-m", "i2v", "keys", "list", *data_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "yes" in next(line for line in listed.stdout.splitlines() if "ops" in line)
    overview = f"{server.base_url}/api/admin/overview"
    r = httpx.get(overview, headers={"Authorization": f"Bearer {admin_key}"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["queued_total"] == 0
    ordinary = httpx.get(overview, headers={"Authorization": f"Bearer {API_KEY}"})
    assert ordinary.status_code == 403
