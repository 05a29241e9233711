"""Fetch a user-supplied image URL without letting the user aim our server at private networks.

The guard lives where the socket is opened: a custom httpcore network backend resolves the
host itself, refuses unless *every* answer is a public address (see `i2v.intake.address`), and
connects to the vetted IP. The TLS SNI and the Host header still carry the hostname, and a DNS
answer that changes between check and connect (rebinding) cannot slip through because there is
no second lookup. Redirects are followed here, one vetted hop at a time, and the whole fetch runs
under one deadline with a byte cap on the body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Collection, Iterable, Sequence
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from i2v.domain.errors import AddressRefused, FetchError, InputError
from i2v.intake.address import Allowlist, IPAddress, problem, unwrap
from i2v.intake.source import require_url

MAX_REDIRECTS = 5
# Ports a public host may be fetched on; other ports are how internal services get probed.
DEFAULT_PORTS = frozenset({80, 443, 8080, 8443})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "i2v-fetch/1 (+image-to-video input fetcher)"


class Refused(Exception):
    """Raised inside the network backend (and by the fetch itself); callers turn it into a
    FetchError."""


class Forbidden(Refused):
    """The guard's own refusal (address or port), as opposed to a host that did not resolve:
    asking again will not help."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow: Allowlist, ports: frozenset[int]) -> None:
        self._allow = allow
        self._ports = ports
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.vetted_addresses(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last if last is not None else Refused(f"URL host '{host}' has no address")

    async def vetted_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, all checked, or `Refused`."""
        bare = host.strip("[]")
        literal = _literal(bare)
        if literal is not None:
            answers = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise Refused(f"URL host '{bare}' could not be resolved ({exc})") from None
            answers = []
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if address not in answers:
                    answers.append(address)
            if not answers:
                raise Refused(f"URL host '{bare}' could not be resolved (no addresses)")
        if self._allow.allows_host(bare, port):
            return answers
        trusted = True
        for address in answers:
            if self._allow.allows_address(address, port):
                continue
            trusted = False
            reason = problem(address)
            if reason is not None:
                shown = str(address)
                inner = unwrap(address)
                if inner != address:
                    shown += f" ({inner})"
                where = f"is {shown}" if literal is not None else f"resolves to {shown}"
                raise Forbidden(f"URL host '{bare}' {where}, which is {reason}")
        if not trusted and port not in self._ports:
            allowed = ", ".join(str(p) for p in sorted(self._ports))
            raise Forbidden(f"URL port {port} is not allowed; use one of {allowed}")
        return answers

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Forbidden("URL fetching never connects to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: _GuardedBackend) -> None:
        super().__init__(trust_env=False)
        # httpx exposes no network_backend option; the pool it builds is swapped for one that
        # opens every connection through the guard (same settings otherwise, no proxy ever).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def redact(url: str | httpx.URL) -> str:
    """`url` as a log may show it: no userinfo, query string or fragment (where signed
    links, tokens and passwords live); scheme, host, port and path stay."""
    text = str(url)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _RedactUrls(logging.Filter):
    """Rewrites the URLs httpx logs at INFO ("HTTP Request: GET <url> ...") with `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


def guarded_client(
    *,
    timeout_s: float,
    headers: dict[str, str],
    allow: Sequence[str] = (),
    ports: Collection[int] = DEFAULT_PORTS,
) -> httpx.AsyncClient:
    """An HTTP client for URLs a user named: every connection goes through the guard, no
    proxy, no redirect followed, no cookie kept. Its requests raise `Forbidden` when the
    guard refuses the address or port, `Refused` when the host cannot be resolved.

    `allow` lists hosts (exact names) or networks (`10.0.0.0/8`, `127.0.0.1`) that an operator
    trusts, each optionally on one port (`127.0.0.1:9000`, `[::1]:8080`, `minio:9000`); they
    skip the public-address rule and the port rule (`ports`, for public hosts). See
    `Allowlist` for how IPv6 forms that embed an IPv4 address are judged.
    """
    backend = _GuardedBackend(Allowlist.parse(allow), frozenset(ports))
    # Users' URLs (image fetches, webhooks) carry tokens in their queries: never log those.
    _redact_httpx_logs()
    client = httpx.AsyncClient(
        transport=_GuardedTransport(backend),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )
    # No cookie may be stored: the client is shared between users. (httpx copies a jar
    # passed to its constructor into a fresh default one, so the policy is set here.)
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


class Fetcher:
    """Fetches image URLs for intake: every request to a URL a user named goes through the
    guard (`allow` and `ports` as in `guarded_client`). One per process; safe to share
    between requests."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_bytes: int,
        allow: Sequence[str] = (),
        ports: Collection[int] = DEFAULT_PORTS,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._client = guarded_client(
            timeout_s=timeout_s,
            allow=allow,
            ports=ports,
            headers={"User-Agent": _USER_AGENT, "Accept": "image/*"},
        )

    async def fetch(self, url: str, *, field: str) -> bytes:
        """The body at `url`, or `FetchError` naming `field` and saying what to change."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._follow(url, field)
        except TimeoutError:
            raise FetchError(
                f"fetching the URL took longer than {self._timeout_s:g} s",
                field=field,
                value=url,
            ) from None
        except Forbidden as exc:
            raise AddressRefused(str(exc), field=field, value=url) from None
        except Refused as exc:
            raise FetchError(str(exc), field=field, value=url) from None
        except InputError as exc:
            if isinstance(exc, FetchError):
                raise
            raise FetchError(exc.message, field=field, value=url) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as exc:
            raise FetchError(
                f"could not fetch the URL ({describe(exc)})", field=field, value=url
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _follow(self, url: str, field: str) -> bytes:
        current = require_url(url, field)
        for hop in range(MAX_REDIRECTS + 1):
            async with self._client.stream("GET", current) as response:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise Refused(
                            f"URL answered HTTP {response.status_code} without a Location header"
                        )
                    if hop == MAX_REDIRECTS:
                        break
                    target = urljoin(current, location)
                    try:
                        current = require_url(target, field)
                    except InputError:
                        raise Refused(
                            f"URL redirected to {target[:80]!r}, which is not an http(s) URL"
                        ) from None
                    continue
                if not 200 <= response.status_code < 300:
                    phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                    raise Refused(f"URL answered HTTP {response.status_code}{phrase}")
                return await self._read_capped(response)
        raise Refused(f"URL redirected more than {MAX_REDIRECTS} times")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise Refused(self._too_large(f"{int(declared):,} bytes"))
        chunks: list[bytes] = []
        total = 0
        # Counting decoded bytes caps gzip bombs too; Content-Length alone is never trusted.
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > self._max_bytes:
                raise Refused(self._too_large(f"more than {self._max_bytes:,} bytes"))
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, got: str) -> str:
        return f"file at the URL must be at most {self._max_bytes:,} bytes, got {got}"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def describe(exc: Exception) -> str:
    """An exception in a few words, for an error message a user reads."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
