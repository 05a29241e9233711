"""The HTTP POST of a webhook, to a URL a user named: through the intake's SSRF guard."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import httpx

from i2v.domain.errors import AddressRefused, FetchError
from i2v.intake.fetch import DEFAULT_PORTS, Forbidden, Refused, describe, guarded_client
from i2v.intake.source import require_http_url

_USER_AGENT = "i2v-webhook/1"
_ANSWER_READ_BYTES = 4096  # of a receiver's answer; only its status matters


class WebhookPoster:
    """Posts webhook bodies. One per process; safe to share between sends.

    `allow` lists hosts or networks an operator trusts (the receivers may be private ones
    there); `ports` are those a public receiver may listen on (see `guarded_client`)."""

    def __init__(
        self, *, timeout_s: float, allow: Sequence[str] = (), ports: Collection[int] = DEFAULT_PORTS
    ) -> None:
        self._client = guarded_client(
            timeout_s=timeout_s,
            allow=allow,
            ports=ports,
            headers={"User-Agent": _USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"},
        )

    async def post(
        self, url: str, body: bytes, *, headers: dict[str, str], timeout_s: float
    ) -> int:
        """POST `body` to `url`; the status code, or `FetchError` (`AddressRefused` when the
        guard refuses it) if refused or unreachable. At most a few KB of the answer are read
        (undecoded): a receiver cannot make us hold what it sends. Redirects are not
        followed; a receiver that moved answers 3xx, and that is a failure."""
        try:
            async with asyncio.timeout(timeout_s):
                target = require_http_url(url, "webhook")
                request = self._client.build_request("POST", target, content=body, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= _ANSWER_READ_BYTES:
                            break
                finally:
                    await response.aclose()
                return response.status_code
        except TimeoutError:
            raise FetchError(f"no answer within {timeout_s:g} s", field="webhook") from None
        except Forbidden as exc:
            raise AddressRefused(str(exc), field="webhook", value=url) from None
        except Refused as exc:
            raise FetchError(str(exc), field="webhook", value=url) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            raise FetchError(f"could not connect ({describe(exc)})", field="webhook") from None

    async def aclose(self) -> None:
        await self._client.aclose()
