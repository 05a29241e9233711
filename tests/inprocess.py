"""The service in the test process: the app `i2v serve` would run, built by the same
wiring, driven through an ASGI transport (no socket) with worker threads beside it.

One event loop (a blocking portal) runs the app's lifespan (the webhook sender) and
every request, as uvicorn's one loop would. `serve()` also puts it on a loopback
socket, for clients that need a real one (the WaveSpeed SDK)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import uvicorn
from fastapi import FastAPI
from starlette.testclient import TestClient

from i2v.api.app import create_app
from i2v.api.services import Services
from i2v.cli import wiring
from i2v.domain.settings import Settings
from i2v.store import Store
from service_api import API_KEY, OTHER_KEY

BASE_URL = "http://testserver"


class InProcess:
    """An API (create_app on services from `wiring.build_services`) plus `workers`
    worker threads from `wiring.build_workers`, on a data dir of its own. Settings as
    `i2v serve` takes them, but for the test keys, quick polls and heartbeats, fetching
    from loopback allowed, and no safety checker unless one is asked for."""

    def __init__(
        self, data_dir: Path, *, workers: int = 1, keys: list[str] | None = None, **settings: Any
    ) -> None:
        self.data_dir = data_dir
        self.settings: Settings = wiring.settings_from(
            {
                "data_dir": data_dir,
                "api_keys": [API_KEY, OTHER_KEY] if keys is None else keys,
                "allow_fetch": ["127.0.0.1"],
                "heartbeat_seconds": 0.5,
                "poll_seconds": 0.05,
                "workers": workers,
                # Checking outputs costs ~0.4 s a job; tests of the check turn it on.
                "safety_checker": "off",
                **settings,
            }
        )
        self._stack = contextlib.ExitStack()
        self.store: Store = wiring.open_store(self.settings)
        self._stack.callback(self.store.close)  # last: the sender and workers use it
        try:
            self.services: Services = wiring.build_services(self.settings, self.store)
            self.made_key = wiring.ensure_key(self.settings, self.store)  # None: keys exist
            self.app: FastAPI = create_app(self.services)
        except BaseException:
            self._stack.close()
            raise
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False

    def start(self) -> InProcess:
        try:
            self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
            self._stack.enter_context(
                self.portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app))
            )
            self._stack.callback(self._stop_workers)
            workers = wiring.build_workers(
                self.settings,
                self.store,
                self.services.storage,
                self.settings.workers,
                metrics=self.services.metrics,
            )
            for i, worker in enumerate(workers):
                thread = threading.Thread(target=worker.run, args=(self._stop,), name=f"w{i}")
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self._stack.close()
            raise
        self._started = True
        return self

    def _stop_workers(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> InProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return BASE_URL

    @property
    def media_dir(self) -> Path:
        return self.settings.resolved_media_dir

    def client(self, key: str | None = API_KEY) -> TestClient:
        """A client with `key` (None: no Authorization header) on this app's event loop.
        Use it without `with`: entering a TestClient would start a second lifespan."""
        assert self._started, "start() first"
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        # Redirects are not followed, as an httpx.Client against a real server would not.
        client = TestClient(self.app, base_url=BASE_URL, headers=headers, follow_redirects=False)
        client.portal = self.portal  # requests run on the app's loop, beside its lifespan
        self._stack.callback(client.close)
        return client

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """This app on a loopback socket (its lifespan is already running); the base URL."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("uvicorn did not start")
                threading.Event().wait(0.01)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
