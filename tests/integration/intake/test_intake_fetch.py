from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from i2v.delivery.poster import WebhookPoster
from i2v.domain.errors import AddressRefused, FetchError
from i2v.intake.fetch import Fetcher, redact

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@dataclass
class Server:
    port: int
    stop: threading.Event
    seen: list[dict[str, str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def make_handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.seen.append({k.lower(): v for k, v in self.headers.items()})
            path = self.path
            if path.split("?", 1)[0] == "/image.png":
                self.send(200, BODY, Set_Cookie="session=secret; Path=/")
            elif path.startswith("/redirect?to="):
                self.send(302, Location=path.removeprefix("/redirect?to="))
            elif path.startswith("/hops/"):
                left = int(path.removeprefix("/hops/"))
                target = "/image.png" if left == 0 else f"/hops/{left - 1}"
                self.send(301, Location=target)
            elif path == "/missing":
                self.send(404, b"nope")
            elif path == "/lying-length":
                # Claims a small body, then keeps going without a Content-Length limit.
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 4096
                for _ in range(64):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/declared-huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
            elif path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x")
                self.wfile.flush()
                state.stop.wait(10)
            else:
                self.send(500)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    stop = threading.Event()
    state = Server(port=0, stop=stop)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def fetch(url: str, *, allow: tuple[str, ...] = ("127.0.0.1",), **kwargs: float) -> bytes:
    async def run() -> bytes:
        fetcher = Fetcher(
            timeout_s=kwargs.get("timeout_s", 5.0),
            max_bytes=int(kwargs.get("max_bytes", 1_000_000)),
            allow=allow,
        )
        try:
            return await fetcher.fetch(url, field="image")
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


def refusal(url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == "image"
    return info.value


def test_allowlisted_fetch_returns_the_body(server: Server) -> None:
    assert fetch(server.url("/image.png")) == BODY
    assert server.seen[0]["host"] == f"127.0.0.1:{server.port}"
    assert server.seen[0]["accept"] == "image/*"


def test_cookies_are_never_replayed(server: Server) -> None:
    async def twice() -> None:
        fetcher = Fetcher(timeout_s=5, max_bytes=1_000_000, allow=["127.0.0.1"])
        try:
            await fetcher.fetch(server.url("/image.png"), field="image")
            await fetcher.fetch(server.url("/image.png"), field="image")
        finally:
            await fetcher.aclose()

    asyncio.run(twice())
    assert "cookie" not in server.seen[1]


def test_loopback_is_refused_without_allowlist(server: Server) -> None:
    error = refusal(server.url("/image.png"), allow=())
    assert error.message == (
        "image: URL host '127.0.0.1' is 127.0.0.1, which is not a public address"
    )
    assert error.value == server.url("/image.png")
    assert server.seen == []


def test_network_allowlist_entry(server: Server) -> None:
    assert fetch(server.url("/image.png"), allow=("127.0.0.0/8",)) == BODY


def test_redirects_are_followed_and_counted(server: Server) -> None:
    assert fetch(server.url("/hops/4")) == BODY  # five redirects in all
    error = refusal(server.url("/hops/5"))
    assert error.message == "image: URL redirected more than 5 times"


def test_redirect_to_metadata_address_is_refused(server: Server) -> None:
    error = refusal(server.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
    assert error.message == (
        "image: URL host '169.254.169.254' is 169.254.169.254, which is a cloud metadata address"
    )


def test_redirect_to_mapped_loopback_is_refused(server: Server) -> None:
    error = refusal(server.url("/redirect?to=http://[::ffff:10.0.0.1]/x"))
    assert "::ffff:a00:1 (10.0.0.1), which is not a public address" in error.message


def test_redirect_to_other_scheme_is_refused(server: Server) -> None:
    error = refusal(server.url("/redirect?to=file:///etc/passwd"))
    assert error.message == (
        "image: URL redirected to 'file:///etc/passwd', which is not an http(s) URL"
    )


def test_redirect_to_unusual_port_is_refused(server: Server) -> None:
    error = refusal(server.url("/redirect?to=http://8.8.8.8:6379/"))
    assert error.message == "image: URL port 6379 is not allowed; use one of 80, 443, 8080, 8443"


def test_non_2xx_names_the_status(server: Server) -> None:
    assert refusal(server.url("/missing")).message == "image: URL answered HTTP 404 Not Found"


def test_body_over_the_cap_is_refused_even_without_content_length(server: Server) -> None:
    error = refusal(server.url("/lying-length"), max_bytes=10_000)
    assert error.message == (
        "image: file at the URL must be at most 10,000 bytes, got more than 10,000 bytes"
    )


def test_declared_length_over_the_cap_is_refused_early(server: Server) -> None:
    error = refusal(server.url("/declared-huge"), max_bytes=10_000)
    assert error.message.endswith("got 1,000,000,000 bytes")


def test_slow_server_hits_the_deadline(server: Server) -> None:
    error = refusal(server.url("/slow"), timeout_s=0.5)
    assert error.message == "image: fetching the URL took longer than 0.5 s"


def test_non_http_urls_are_refused() -> None:
    error = refusal("ftp://example.com/a.png")
    assert error.message == (
        "image: must be an absolute http(s) URL, a data: URI or base64, "
        "got 'ftp://example.com/a.png'"
    )
    assert "no host" in refusal("http:///a.png").message


def test_unresolvable_host_is_refused() -> None:
    error = refusal("http://does-not-exist.invalid/a.png", allow=())
    assert error.message.startswith(
        "image: URL host 'does-not-exist.invalid' could not be resolved"
    )


def test_localhost_name_is_refused(server: Server) -> None:
    error = refusal(f"http://localhost:{server.port}/image.png", allow=())
    assert "URL host 'localhost' resolves to" in error.message
    assert error.message.endswith("which is not a public address")


def test_private_literals_are_refused_before_connecting() -> None:
    for url in (
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://0.0.0.0/",
    ):
        assert "which is" in refusal(url, allow=()).message


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    async def getaddrinfo(
        self: object, host: str, port: int, **kwargs: object
    ) -> list[tuple[int, int, int, str, tuple[str, int]]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


def test_metadata_hostname_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"metadata.internal": ["169.254.169.254"]})
    assert refusal("http://metadata.internal/latest/", allow=()).message == (
        "image: URL host 'metadata.internal' resolves to 169.254.169.254, "
        "which is a cloud metadata address"
    )


def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.5"]})
    assert refusal("http://mixed.example/a.png", allow=()).message == (
        "image: URL host 'mixed.example' resolves to 10.0.0.5, which is not a public address"
    )


def test_nat64_answer_is_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"sneaky.example": ["64:ff9b::a9fe:a9fe"]})
    assert refusal("https://sneaky.example/a.png", allow=()).message == (
        "image: URL host 'sneaky.example' resolves to 64:ff9b::a9fe:a9fe (169.254.169.254), "
        "which is a cloud metadata address"
    )


def test_connection_goes_to_the_vetted_address(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name resolves to an unreachable address first, then to the server: the fetch connects
    # to the addresses it checked, in order, and keeps the hostname in the Host header.
    fake_dns(monkeypatch, {"images.test": ["::1", "127.0.0.1"]})
    body = fetch(f"http://images.test:{server.port}/image.png", allow=("127.0.0.1", "::1"))
    assert body == BODY
    assert server.seen[0]["host"] == f"images.test:{server.port}"


def test_allowlist_entry_with_a_port_allows_only_that_port(server: Server) -> None:
    assert fetch(server.url("/image.png"), allow=(f"127.0.0.1:{server.port}",)) == BODY
    error = refusal(server.url("/image.png"), allow=(f"127.0.0.1:{server.port + 1}",))
    assert error.message == (
        "image: URL host '127.0.0.1' is 127.0.0.1, which is not a public address"
    )
    assert server.seen == [server.seen[0]]  # only the allowed fetch reached the server


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "[::7f00:1]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
    ],
)
def test_translated_forms_of_an_allowed_ipv4_are_refused(server: Server, host: str) -> None:
    error = refusal(f"http://{host}:{server.port}/image.png", allow=("127.0.0.1",))
    assert isinstance(error, AddressRefused)
    assert "(127.0.0.1), which is not a public address" in error.message
    assert server.seen == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@example.com/a.png?X-Amz-Signature=abc#f", "https://example.com/a.png"),
        ("http://[::1]:8080/hook?token=t", "http://[::1]:8080/hook"),
        ("http://example.com:99999/x", "<unparseable URL>"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_fetched_urls_are_logged_without_query_or_userinfo(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = f"http://user:hunter2@127.0.0.1:{server.port}/image.png?token=s3cr3t"
    assert fetch(url) == BODY
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged, "httpx logged no request line"
    assert all("s3cr3t" not in line and "hunter2" not in line for line in logged)
    assert f"http://127.0.0.1:{server.port}/image.png" in logged[0]


def test_webhook_urls_are_logged_without_query(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def post() -> int:
        poster = WebhookPoster(timeout_s=5, allow=["127.0.0.1"])
        try:
            url = f"http://127.0.0.1:{server.port}/image.png?sig=s3cr3t"
            return await poster.post(url, b"{}", headers={}, timeout_s=5)
        finally:
            await poster.aclose()

    asyncio.run(post())
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged
    assert all("s3cr3t" not in line for line in logged)
