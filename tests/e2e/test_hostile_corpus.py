"""The hostile corpus: the security review's findings replayed against a real `i2v serve`.

Each case asserts the refusal, its status and its envelope; throughout every case a
watchdog thread asks /healthz every 50 ms and each answer must come within 200 ms (the
event loop stayed responsive), and the server's resident memory must stay within
RSS_GROWTH_LIMIT of what it was at start. docs/security.md counts these cases by category.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hostile import scan_bomb
from i2v.api.connection import HEAD_TIMEOUT_S, MAX_HEAD_BYTES
from i2v.intake.source import IMAGE_MAX_CHARS
from photos import photo_bytes
from server import Server
from service_api import API_KEY, FAKE_ROUTE, OTHER_KEY, RC_ROUTE, fake_catalog

WS = f"/api/v3/{FAKE_ROUTE}"
RC = f"/v1/models/{RC_ROUTE}"
HEALTH_LIMIT_S = 0.2
RSS_GROWTH_LIMIT = 256 * 1024 * 1024
PHOTO = base64.b64encode(photo_bytes(640, 480)).decode()


# --- the server, the watchdog, raw HTTP ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("hostile")
    # No workers: accepted predictions stay queued, so no render competes for the CPU.
    catalog = fake_catalog(data / "catalog.toml", frames=[9], **{})
    started = Server(data / "server", catalog=catalog, workers=0).start()
    try:
        yield started
    finally:
        started.stop()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Watchdog:
    """Polls /healthz and the server's RSS from a thread while a case runs."""

    def __init__(self, server: Server) -> None:
        assert server.proc is not None
        self.server = server
        self.pid = server.proc.pid
        self.baseline = rss(self.pid)
        self.slowest = 0.0
        self.peak = self.baseline
        self.polls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=5) as client:
            while not self._stop.is_set():
                self._poll(client)
                self._stop.wait(0.05)

    def _poll(self, client: httpx.Client) -> None:
        started = time.perf_counter()
        try:
            status = client.get("/healthz").status_code
        except httpx.HTTPError as exc:
            self.failures.append(f"/healthz: {type(exc).__name__}")
            status = 0
        self.slowest = max(self.slowest, time.perf_counter() - started)
        self.polls += 1
        if status != 200:
            self.failures.append(f"/healthz answered {status}")
        self.peak = max(self.peak, rss(self.pid))

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        with httpx.Client(base_url=self.server.base_url, timeout=5) as client:
            self._poll(client)  # and once after the case, however short it was


@pytest.fixture
def watch(server: Server) -> Iterator[Watchdog]:
    with Watchdog(server) as dog:
        yield dog
    assert dog.polls >= 1
    assert not dog.failures, dog.failures
    assert dog.slowest < HEALTH_LIMIT_S, f"/healthz took {dog.slowest:.3f} s"
    growth = dog.peak - dog.baseline
    assert growth < RSS_GROWTH_LIMIT, f"server RSS grew {growth / 2**20:.0f} MiB"


def raw(
    server: Server, head: bytes, body: bytes = b"", *, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (and `body`) on a fresh socket; the status, headers and body that come
    back before the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def wavespeed_error(body: Any, status: int) -> str:
    assert body["code"] == status, body
    assert body["data"] is None
    message: str = body["message"]
    return message


def runcomfy_error(body: Any, status: int) -> str:
    assert body["request_id"] is None
    assert body["error"]["code"] == status * 1000 + 1, body
    message: str = body["error"]["message"]
    return message


def post(server: Server, path: str, *, key: str = API_KEY, **kwargs: Any) -> httpx.Response:
    with server.client(key) as c:
        return c.post(path, **kwargs)


# --- 1. authenticate first, then read --------------------------------------------------

NO_KEY_CASES = [
    ("POST", WS, "application/json", 31_000_000),
    ("POST", RC, "application/json", 31_000_000),
    ("POST", "/api/v3/media/uploads", "application/json", 60_000_000),
    ("POST", "/api/v3/media/upload/binary", "multipart/form-data; boundary=x", 60_000_000),
]


@pytest.mark.parametrize(("method", "path", "content_type", "length"), NO_KEY_CASES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic YTpi"])
def test_no_key_is_refused_before_a_body_byte_is_read(
    server: Server,
    watch: Watchdog,
    method: str,
    path: str,
    content_type: str,
    length: int,
    authorization: str | None,
) -> None:
    # The head announces tens of MB and no body follows: the 401 can only come back if the
    # server answered without waiting for (or reading) a single body byte.
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, answer_headers, body = raw(server, request_head(method, path, headers), timeout=5)
    assert status == 401
    assert answer_headers["www-authenticate"] == "Bearer"
    parse = runcomfy_error if path.startswith("/v1/") else wavespeed_error
    assert "API key" in parse(httpx.Response(401, content=body).json(), 401) or "Bearer" in (
        body.decode()
    )


# --- 2. body caps per route ------------------------------------------------------------


def test_a_ticket_body_is_capped_at_64_kb(server: Server, watch: Watchdog) -> None:
    body = b'{"filename": "a.png", "size": 10, "x": "' + b"a" * 100_000 + b'"}'
    r = post(
        server, "/api/v3/media/uploads", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert wavespeed_error(r.json(), 413) == f"body: must be at most 65536 bytes, got {len(body)}"


@pytest.mark.parametrize("path", [WS, RC])
def test_a_submit_body_is_capped_at_what_an_image_needs(
    server: Server, watch: Watchdog, path: str
) -> None:
    head = request_head(
        "POST",
        path,
        {
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json",
            "Content-Length": "20000000",
        },
    )
    status, _, body = raw(server, head, timeout=5)
    assert status == 413
    parse = runcomfy_error if path == RC else wavespeed_error
    message = parse(httpx.Response(413, content=body).json(), 413)
    assert message.startswith("body: must be at most ")
    assert message.endswith(", got 20000000")


def test_a_streamed_body_without_length_is_cut_at_its_cap(server: Server, watch: Watchdog) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "p", "image": "'
        for _ in range(20):  # 20 MB in all, no Content-Length
            yield b"A" * 1_000_000

    r = post(server, WS, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert wavespeed_error(r.json(), 413).endswith("bytes, got more")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("image", "A" * (IMAGE_MAX_CHARS + 1), f"at most {IMAGE_MAX_CHARS} characters"),
        ("webhook_url", "https://example.com/" + "a" * 3000, "at most 2048 characters"),
        ("prompt", "x" * 5000, "at most 800 characters"),
    ],
)
def test_string_fields_have_length_caps(
    server: Server, watch: Watchdog, field: str, value: str, needle: str
) -> None:
    body = {"prompt": "p", "image": PHOTO, field: value}
    r = post(server, WS, json=body)
    assert r.status_code == 400, r.text[:300]
    message = wavespeed_error(r.json(), 400)
    assert message.startswith(f"{field}: ")
    assert needle in message


# --- 3. hostile JSON -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"prompt": "p\xff\xfe", "image": "x"}', "body: is not valid UTF-8 (byte 0xff"),
        (b"[" * 1_000_000 + b"]" * 1_000_000, "body: JSON nests too deeply"),
        (b'{"prompt": "p", "image": ', "body: malformed JSON"),
        (b'"just a string"', "body: must be a JSON object"),
    ],
)
@pytest.mark.parametrize("path", [WS, RC])
def test_hostile_json_is_named(
    server: Server, watch: Watchdog, path: str, body: bytes, needle: str
) -> None:
    r = post(server, path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    parse = runcomfy_error if path == RC else wavespeed_error
    assert needle in parse(r.json(), 400)


# --- 4. hostile images -----------------------------------------------------------------


def png_bomb() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (400, 400), (0, i * 40, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


IMAGE_CASES = [
    ("scan bomb", scan_bomb(4096, 4096, 1000, flat=True), "a JPEG may have at most 64 scans"),
    ("pixel bomb", png_bomb(), "longest side must be at most 4096 pixels, got 20000"),
    ("animated WebP", animated_webp(), "animated images are not accepted, got 3 frames"),
]


@pytest.mark.parametrize(("name", "data", "needle"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_hostile_images_are_refused_and_others_still_submit(
    server: Server, watch: Watchdog, name: str, data: bytes, needle: str
) -> None:
    outcome: dict[str, httpx.Response] = {}

    def other_key_submits() -> None:
        outcome["other"] = post(server, WS, key=OTHER_KEY, json={"prompt": "p", "image": PHOTO})

    other = threading.Thread(target=other_key_submits)
    other.start()
    r = post(server, WS, json={"prompt": "p", "image": base64.b64encode(data).decode()})
    other.join(30)
    assert r.status_code == 400, r.text[:300]
    assert needle in wavespeed_error(r.json(), 400)
    assert outcome["other"].status_code == 200, outcome["other"].text[:300]


# --- 5. SSRF: IPv6 forms of the allowed loopback ---------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "[::7f00:1]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
    ],
    ids=["nat64", "6to4", "ipv4-compatible", "teredo"],
)
def test_embedded_loopback_forms_are_refused(server: Server, watch: Watchdog, host: str) -> None:
    # `--allow-fetch 127.0.0.1` allows 127.0.0.1 itself, not the IPv6 forms that embed it.
    url = f"http://{host}:{server.port}/healthz"
    r = post(server, WS, json={"prompt": "p", "image": url})
    assert r.status_code == 400
    assert "(127.0.0.1), which is not a public address" in wavespeed_error(r.json(), 400)


# --- 6. signed links and ranges --------------------------------------------------------


def test_signed_links_take_only_ascii_digit_times_and_ranges_answer_in_the_envelope(
    server: Server, watch: Watchdog
) -> None:
    data = photo_bytes(400, 400)
    with server.client() as c:
        ticket = c.post("/api/v3/media/uploads", json={"filename": "a.jpg", "size": len(data)})
        assert ticket.status_code == 200, ticket.text
        upload = ticket.json()["data"]["upload"]
        assert httpx.put(upload["url"], content=data).status_code == 200
        url = ticket.json()["data"]["download_url"]
    assert "&iat=" in url
    assert httpx.get(url).content == data
    path, _, query = url.partition("?")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    for exp in ("-0", "0_0", "+0", "%2B0", "%D9%A0"):  # the last: ARABIC-INDIC DIGIT ZERO
        tampered = f"{path}?exp={exp}&iat={fields['iat']}&sig={fields['sig']}"
        r = httpx.get(tampered)
        assert r.status_code == 404, (exp, r.status_code)
        assert wavespeed_error(r.json(), 404).startswith("no such media object")
    r = httpx.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert wavespeed_error(r.json(), 416).startswith("range: ")


# --- 7. HTTP hygiene -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", WS, RC])
def test_oversized_headers_get_431(server: Server, watch: Watchdog, path: str) -> None:
    head = request_head("GET", path, {"X-Filler": "a" * (MAX_HEAD_BYTES + 1000)})
    status, headers, body = raw(server, head)
    assert status == 431
    assert headers["connection"] == "close"
    parse = runcomfy_error if path == RC else wavespeed_error
    assert parse(httpx.Response(431, content=body).json(), 431).startswith(
        "headers: must be at most"
    )


def answered(sock: socket.socket, wait: float) -> bool:
    """Whether the server has sent something (or closed) within `wait` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


def test_a_huge_header_stream_is_cut_off(server: Server, watch: Watchdog) -> None:
    # The review's 50 MB header: the server answers 431 after the first 32 KB instead of
    # buffering the rest; the client stops sending when the answer comes.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        while sent < 50_000_000 and not answered(sock, 0):
            sock.sendall(b"a" * 16384)
            sent += 16384
        assert answered(sock, 5)
        status, _, _ = read_response(sock)
    assert status == 431
    assert sent < 10_000_000  # it answered long before the 50 MB were sent


def test_a_slow_client_is_cut_after_the_head_deadline(server: Server, watch: Watchdog) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=HEAD_TIMEOUT_S + 10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(int(HEAD_TIMEOUT_S * 4)):  # a header line every 0.5 s, never the end
            if answered(sock, 0.5):
                break
            sock.sendall(f"X-Slow-{i}: a\r\n".encode())
        status, _, body = read_response(sock)
    assert status == 408
    assert wavespeed_error(httpx.Response(408, content=body).json(), 408).startswith(
        "headers: must arrive within"
    )
    assert HEAD_TIMEOUT_S <= time.monotonic() - started < HEAD_TIMEOUT_S * 2


def test_pages_carry_a_csp_and_load_nothing_from_elsewhere(server: Server, watch: Watchdog) -> None:
    for path in ("/", "/docs", "/redoc", "/admin"):
        r = httpx.get(server.base_url + path)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "default-src 'self'" in policy or "default-src 'none'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert '<script src="http' not in r.text, path
        assert "cdn" not in r.text.lower(), path


# --- 8. sync mode stops waiting when the client leaves ---------------------------------


def submit_count(server: Server) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("i2v_http_requests_total{") and f'route="{WS}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sync_mode_stops_waiting_when_the_client_disconnects(
    server: Server, watch: Watchdog
) -> None:
    before = submit_count(server)
    body = ('{"prompt": "p", "enable_sync_mode": true, "image": "' + PHOTO + '"}').encode()
    head = request_head(
        "POST",
        WS,
        {
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        },
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        time.sleep(1.0)  # accepted and waiting (no worker runs it: workers=0)
    # The request is finished (counted by the metrics middleware) within a poll or two
    # of the client leaving, not after the 300 s sync timeout.
    deadline = time.monotonic() + 10
    while submit_count(server) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert submit_count(server) == before + 1
    # The prediction goes on: it is still queued for a worker.
    history = post(server, "/api/v3/predictions", json={"page": 1}).json()["data"]
    assert history["items"][0]["status"] == "created"
