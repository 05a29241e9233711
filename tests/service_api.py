"""What tests of the HTTP API share, in-process (tests/unit) or against a real server
(tests/e2e): the test keys, catalogs with fake-engine routes, polling helpers and a
webhook receiver on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

FAKE_ROUTE = "test/fake"
RC_ROUTE = "bytedance/dreamina-3-0/pro/image-to-video"  # a seed route, served by `fake` here
API_KEY = "test-key-alice"
OTHER_KEY = "test-key-bob"
TERMINAL = ("completed", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
        if data["status"] in TERMINAL:
            return data
        time.sleep(0.02)
    raise AssertionError(f"prediction {pid} did not finish within {timeout:g} s")


def wait_result(client: httpx.Client, request_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a RunComfy request until it is terminal; its result body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/requests/{request_id}/result").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"{request_id} did not finish within {timeout:g} s")


def write_catalog(path: Path, routes: dict[str, dict[str, object]]) -> Path:
    lines = []
    for name, table in routes.items():
        table = dict(table)
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


def fake_catalog(
    path: Path,
    frame_delay: float = 0.0,
    frames: list[int] | None = None,
    fps: int = 24,
    **extra: Any,
) -> Path:
    """The seed routes plus a fake-engine route, for service behaviour tests. `frames`:
    the allowed frame counts (default the seeds' 121 and 241; fewer render faster)."""
    timing = {"frames": frames or [121, 241], "fps": fps}
    return write_catalog(
        path,
        {
            FAKE_ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                **timing,
                "inputs": ["aspect_ratio", "camera_fixed"],
                "options": {"frame_delay": frame_delay},
            },
            RC_ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                **timing,
                "options": {"frame_delay": frame_delay},
            },
            **extra,
        },
    )


class Receiver:
    """Records every POST; answers each with the next status in `codes` (then 200)."""

    def __init__(self, port: int, codes: list[int] | None = None, hold: float = 0.0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.codes = list(codes or [])
        self.answered = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(hold)  # a receiver slower than the sender's timeout
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered += 1

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            assert time.monotonic() < deadline, f"{len(self.calls)} of {n} webhook calls"
            time.sleep(0.02)
        return self.calls

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def receiver(
    codes: list[int] | None = None, port: int | None = None, hold: float = 0.0
) -> Iterator[Receiver]:
    r = Receiver(port or free_port(), codes, hold)
    try:
        yield r
    finally:
        r.close()
