"""A real `i2v serve` process on loopback, for service tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FAKE_ROUTE = "test/fake"
API_KEY = "test-key-alice"
OTHER_KEY = "test-key-bob"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(
        self,
        data_dir: Path,
        *,
        catalog: Path | None = None,
        workers: int = 1,
        lease_seconds: float = 30.0,
        extra_env: dict[str, str] | None = None,
        api_keys: str = f"{API_KEY},{OTHER_KEY}",
    ) -> None:
        self.data_dir = data_dir
        self.api_keys = api_keys
        self.catalog = catalog
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.port = free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        args = [
            sys.executable,
            "-m",
            "i2v",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
            "--lease-seconds",
            str(self.lease_seconds),
            "--allow-fetch",
            "127.0.0.1",
        ]
        if self.catalog is not None:
            args += ["--catalog", str(self.catalog)]
        env = {
            **os.environ,
            "I2V_API_KEYS": self.api_keys,
            "I2V_HEARTBEAT_SECONDS": "0.5",
            **self.extra_env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def client(self, key: str = API_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )


def submit_seeds(client: httpx.Client, image: str, count: int) -> list[str]:
    """Submit `count` predictions of the fake route, seeds 0.., checking each was accepted."""
    ids = []
    for seed in range(count):
        body = {"prompt": "p", "image": image, "seed": seed}
        r = client.post(f"/api/v3/{FAKE_ROUTE}", json=body)
        assert r.status_code == 200, r.text
        ids.append(r.json()["data"]["id"])
    return ids


def wait_done(client: httpx.Client, pid: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a WaveSpeed prediction until it is terminal; its `data`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
        if data["status"] in ("completed", "failed", "cancelled"):
            return data
        time.sleep(0.05)
    raise AssertionError(f"prediction {pid} did not finish within {timeout:g} s")


def write_catalog(path: Path, routes: dict[str, dict[str, object]]) -> Path:
    lines = []
    for name, table in routes.items():
        lines.append(f'[routes."{name}"]')
        options = table.pop("options", None)
        for k, v in table.items():
            lines.append(f"{k} = {_toml(v)}")
        if options:
            lines.append(f'[routes."{name}".options]')
            for k, v in options.items():  # type: ignore[attr-defined]
                lines.append(f"{k} = {_toml(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def fake_catalog(path: Path, frame_delay: float = 0.0, **extra: Any) -> Path:
    """The seed routes plus a fake-engine route, for service behaviour tests."""
    return write_catalog(
        path,
        {
            FAKE_ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [121, 241],
                "inputs": ["aspect_ratio", "camera_fixed"],
                "options": {"frame_delay": frame_delay},
            },
            "bytedance/dreamina-3-0/pro/image-to-video": {
                "engine": "fake",
                "resolution": "480p",
                "frames": [121, 241],
                "options": {"frame_delay": frame_delay},
            },
            **extra,
        },
    )
