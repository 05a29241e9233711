"""Scale-out across machines, simulated on one: an API process and a worker process with
separate data folders that share nothing but PostgreSQL and an S3 bucket (a real
S3-compatible server). Inputs uploaded to the API are rendered by the worker; the output
the worker wrote to the bucket is served by the API, byte ranges included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from i2v.video import probe
from photos import photo_bytes
from s3server import ACCESS_KEY, SECRET_KEY, S3Server
from server import Server
from service_api import FAKE_ROUTE, fake_catalog, wait_done


def test_api_and_worker_share_only_postgres_and_a_bucket(
    tmp_path: Path, postgres_url: str, s3_server: S3Server
) -> None:
    env = {
        "I2V_DATABASE_URL": postgres_url,
        "I2V_STORAGE_URL": f"s3://{s3_server.new_bucket()}/i2v",
        "I2V_S3_ENDPOINT": s3_server.endpoint,
        "I2V_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "I2V_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "I2V_URL_SECRET": "shared-secret-of-the-deployment",
    }
    catalog = fake_catalog(tmp_path / "catalog.toml", frames=[9])
    api = Server(tmp_path / "api-machine", catalog=catalog, workers=0, extra_env=env).start()
    worker_dir = tmp_path / "worker-machine"
    worker = subprocess.Popen(
        [sys.executable, "-m", "i2v", "worker", "--data-dir", str(worker_dir)],
        env={**os.environ, **env, "I2V_CATALOG": str(catalog)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with api.client() as client:
            upload = client.post(
                "/api/v3/media/upload/binary",
                files={"file": ("photo.jpg", photo_bytes(), "image/jpeg")},
            )
            assert upload.status_code == 200, upload.text
            image_url = upload.json()["data"]["download_url"]
            r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": image_url})
            assert r.status_code == 200, r.text
            data = wait_done(client, r.json()["data"]["id"])
            assert data["status"] == "completed", data

        video_url = data["outputs"][0]
        whole = httpx.get(video_url)
        assert whole.status_code == 200
        assert whole.headers["accept-ranges"] == "bytes"
        (tmp_path / "out.mp4").write_bytes(whole.content)
        assert probe(tmp_path / "out.mp4").frames == 9

        part = httpx.get(video_url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
        assert part.content == whole.content[100:1100]
        head = httpx.head(video_url)
        assert head.headers["content-length"] == str(len(whole.content))
        beyond = httpx.get(video_url, headers={"Range": f"bytes={len(whole.content)}-"})
        assert beyond.status_code == 416

        # Neither machine kept the media on its own disk.
        for machine in (api.data_dir, worker_dir):
            assert not list(machine.rglob("*.mp4")), machine
            assert not list(machine.rglob("*.jpg")), machine
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        api.stop()
