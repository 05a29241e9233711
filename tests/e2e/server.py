"""A real `i2v serve` process on loopback, for service tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service_api import API_KEY, OTHER_KEY, free_port


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
