"""`ApiClient`: what `i2v submit|status|cancel|history` send to a server speaking the
WaveSpeed v3 dialect (this one by default), over httpx only.

Every refusal becomes a `ClientError` with a message for a person: the server's own
message for a refused input or key, and what to check for a server that does not answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "/api/v3"
UPLOAD_PATH = f"{API}/media/upload/binary"
CANCEL_PATH = "/v1/requests/{id}/cancel"  # WaveSpeed has no cancel; the RunComfy dialect does
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# Outcomes an events stream ends with (the WaveSpeed view's statuses).
FINAL_EVENTS = ("completed", "failed", "cancelled", "deleted")


class ClientError(Exception):
    """A request the server refused or could not be sent; `message` says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: dict[str, Any]


class ApiClient:
    """A server's API with one key. Use as a context manager (it holds a connection pool)."""

    def __init__(self, server: str, key: str) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def upload(self, path: Path) -> str:
        """Upload a local file; its download_url, which a submit may name as its image."""
        with path.open("rb") as f:
            data = self._call("POST", UPLOAD_PATH, files={"file": (path.name, f)})
        return str(data["download_url"])

    def submit(self, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Submit a prediction; the prediction (`data` of the answer)."""
        return self._call("POST", f"{API}/{model.strip('/')}", json=inputs)

    def result(self, prediction_id: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/predictions/{prediction_id}/result")

    def history(self, page: int, page_size: int) -> dict[str, Any]:
        body = {"page": page, "page_size": page_size}
        return self._call("POST", f"{API}/predictions", json=body)

    def cancel(self, prediction_id: str) -> str:
        """`cancelled`, or `not_cancellable` when it had already finished."""
        body = self._send("POST", CANCEL_PATH.format(id=prediction_id))
        return str(body["outcome"])

    def events(self, prediction_id: str) -> Iterator[Event]:
        """The prediction's events until its outcome (`GET .../events`)."""
        path = f"{API}/predictions/{prediction_id}/events"
        try:
            # No read timeout: a queued prediction may wait long between events.
            with self._http.stream("GET", path, timeout=httpx.Timeout(None, connect=10.0)) as r:
                if r.status_code != 200:
                    r.read()
                    raise ClientError(_refusal(r))
                yield from _parse_events(r.iter_lines())
        except httpx.TransportError as exc:
            raise ClientError(self._unreachable(exc)) from exc

    def download(self, url: str, out: Path) -> int:
        """Save an output URL to `out`; its size in bytes. The URL is signed: no key is sent
        (it may point at another host, the storage's)."""
        try:
            with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as r:
                if r.status_code != 200:
                    raise ClientError(f"downloading {url} failed: HTTP {r.status_code}")
                size = 0
                with out.open("wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
                        size += len(chunk)
        except httpx.TransportError as exc:
            raise ClientError(f"downloading {url} failed: {exc}") from exc
        return size

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A WaveSpeed-dialect request: its envelope's `data`."""
        data = self._send(method, path, **kwargs).get("data")
        if not isinstance(data, dict):
            raise ClientError(f"{method} {path}: the server's answer has no data object")
        return data

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(self._unreachable(exc)) from exc
        if r.status_code >= 400:
            raise ClientError(_refusal(r))
        try:
            body = r.json()
        except ValueError as exc:
            raise ClientError(f"{method} {path}: the server's answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ClientError(f"{method} {path}: the server's answer is not a JSON object")
        return body

    def _unreachable(self, exc: httpx.TransportError) -> str:
        return (
            f"cannot reach the server at {self.server} ({exc or type(exc).__name__}); "
            "is it running (`i2v serve`)? Set it with --server or I2V_SERVER"
        )


def _refusal(r: httpx.Response) -> str:
    """A refusal for a person: what the server said, and what to do about a key."""
    message = _server_message(r)
    if r.status_code == 401:
        return f"the server refused the API key: {message}. Pass --key or set I2V_API_KEY"
    if r.status_code == 404:
        return f"not found: {message}"
    if r.status_code in (400, 413, 422):
        return f"the server refused the input: {message}"
    return f"the server answered HTTP {r.status_code}: {message}"


def _server_message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip()[:200] or r.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):  # WaveSpeed envelope
            return str(body["message"])
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):  # RunComfy
            return str(error["message"])
    return r.reason_phrase


def _parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events from their lines (`event:`, `data:`, blank line; `:` comments)."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
