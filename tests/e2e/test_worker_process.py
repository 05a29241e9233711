"""Scale-out shape on one machine: `i2v serve --workers 0` takes requests, separate
`i2v worker` processes render them from the shared queue."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from photos import photo_bytes
from server import Server
from service_api import FAKE_ROUTE, fake_catalog


def test_api_only_server_with_separate_worker_processes(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(
        "data", catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]), workers=0
    )
    image = base64.b64encode(photo_bytes()).decode()
    with server.client() as client:
        ids = [
            client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": image}).json()[
                "data"
            ]["id"]
            for _ in range(4)
        ]
        time.sleep(0.5)
        # Nobody renders yet: the API process has no workers.
        statuses = {
            client.get(f"/api/v3/predictions/{i}/result").json()["data"]["status"] for i in ids
        }
        assert statuses == {"created"}

        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "i2v",
                    "worker",
                    "--data-dir",
                    str(server.data_dir),
                    "--engine",
                    "fake",
                ],
                env=os.environ.copy(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 60
            while True:
                done = [client.get(f"/api/v3/predictions/{i}/result").json()["data"] for i in ids]
                if all(d["status"] == "completed" for d in done):
                    break
                assert time.monotonic() < deadline, done
                time.sleep(0.1)
        finally:
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=30) for proc in workers]
        assert codes == [0, 0]  # SIGTERM: finish the current job, then exit cleanly
