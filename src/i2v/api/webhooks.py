"""Webhooks: telling the URL a client gave at submit how its prediction ended.

Each dialect gets what its clients expect. WaveSpeed: the bare prediction object (no
envelope), signed as WaveSpeed signs: `webhook-signature: v3,<hex HMAC-SHA256>` over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed by the `whsec_` secret's text. RunComfy
documents no signing, so its result object is signed by the Standard Webhooks scheme
(`v1,<base64>`, key base64-decoded), which its libraries verify. Each owner has one secret,
derived from the server's, shown by `GET /api/v3/webhook/secret`.

Delivery is at least once: the predictions row is the outbox (`i2v.store.outbox`), a 2xx
answer within the timeout is success, anything else is retried with backoff until the
attempts run out, except 410 Gone and a URL the SSRF guard refuses, which end it.
`webhook-id` (the prediction id) stays the same across attempts, for deduplication.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from i2v.api.views import Views
from i2v.domain.errors import AddressRefused, FetchError
from i2v.domain.prediction import Prediction
from i2v.intake.fetch import Fetcher
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner
from i2v.store.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
WAVESPEED = "wavespeed"
RUNCOMFY = "runcomfy"
FORMATS = (WAVESPEED, RUNCOMFY)
_USER_AGENT = "i2v-webhook/1"
_SHUTDOWN_GRACE_S = 3.0


class WebhookSecrets:
    """One secret per owner, derived from the server's: nothing to store, and stable."""

    def __init__(self, server_secret: bytes) -> None:
        self._key = server_secret

    def secret_for(self, owner: str) -> str:
        digest = hmac.new(self._key, b"webhook-secret\n" + owner.encode(), hashlib.sha256)
        return SECRET_PREFIX + base64.b64encode(digest.digest()).decode("ascii")


def wavespeed_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret.removeprefix(SECRET_PREFIX).encode()  # the text, not decoded: WaveSpeed's way
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v3," + hmac.new(key, signed, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


_SIGNERS = {WAVESPEED: wavespeed_signature, RUNCOMFY: standard_signature}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # in all, the first included
    first_wait_s: float  # before the second attempt; each later wait is 4x the one before
    max_wait_s: float

    def retry_at(self, attempt: int, now: datetime) -> datetime | None:
        """When to try again after `attempt` (1-based) failed; None once attempts run out."""
        if attempt >= self.attempts:
            return None
        wait = min(self.first_wait_s * 4 ** (attempt - 1), self.max_wait_s)
        return now + timedelta(seconds=wait)


Render = Callable[[Prediction], dict[str, Any]]


def dialect_payload(signer: UrlSigner, storage: Storage) -> Render:
    """The payload as the prediction's dialect shows it, with links on the base URL its
    client reached us at: WaveSpeed's prediction object with its input, or RunComfy's result."""

    def render(p: Prediction) -> dict[str, Any]:
        views = Views(p.options.get("base_url", ""), signer, storage)
        if p.options.get("webhook_format") == RUNCOMFY:
            return views.runcomfy_result(p)
        return views.wavespeed(p, with_input=True)

    return render


class WebhookSender:
    """Claims owed deliveries and posts them; `run` until cancelled (one per API process)."""

    def __init__(
        self,
        outbox: Outbox,
        fetcher: Fetcher,
        secrets: WebhookSecrets,
        render: Render,
        *,
        policy: RetryPolicy,
        timeout_s: float,
        poll_s: float,
        concurrency: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._fetcher = fetcher
        self._secrets = secrets
        self._render = render
        self._policy = policy
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._concurrency = concurrency
        self._clock = clock

    async def run(self) -> None:
        """Keep up to `concurrency` sends in flight, claiming more as each one ends, so a
        receiver that never answers holds one slot for one timeout, not everyone's queue.
        When cancelled (shutdown), claims stop and the sends in flight get a moment to end."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = self._concurrency - len(inflight)
                claimed: list[Delivery] = []
                if free > 0:
                    try:
                        claimed = await run_in_threadpool(
                            partial(
                                self._outbox.claim,
                                limit=free,
                                lease_seconds=self.lease_s,
                                max_attempts=self._policy.attempts,
                            )
                        )
                    except Exception:  # the database may be away a moment; the outbox keeps it
                        log.exception("webhook sender: claiming deliveries failed; retrying")
                inflight |= {asyncio.create_task(self._send(d)) for d in claimed}
                if claimed and len(claimed) == free:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                elif inflight:
                    await asyncio.wait(
                        inflight, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await asyncio.sleep(self._poll_s)
                inflight = {task for task in inflight if not task.done()}
        finally:
            if inflight:
                _, late = await asyncio.wait(inflight, timeout=_SHUTDOWN_GRACE_S)
                for task in late:
                    task.cancel()  # its lease runs out and another sender retries it

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is ours: a whole send, then time to report it."""
        return 2 * self._timeout_s + 5.0

    async def _send(self, delivery: Delivery) -> None:
        p = delivery.prediction
        try:
            outcome = await self._post(p)
        except Exception as exc:  # a bug rendering the payload: record it, never loop on it
            log.exception("webhook for %s: could not build the request", p.id)
            outcome = f"could not build the request: {type(exc).__name__}", False
        try:
            if outcome is None:
                await run_in_threadpool(
                    lambda: self._outbox.delivered(p.id, attempt=delivery.attempt)
                )
                return
            error, final = outcome
            now = datetime.fromtimestamp(self._clock(), UTC)
            retry_at = None if final else self._policy.retry_at(delivery.attempt, now)
            log.warning(
                "webhook for %s, attempt %d: %s; %s",
                p.id,
                delivery.attempt,
                error,
                "giving up" if retry_at is None else f"retrying at {retry_at:%H:%M:%S}",
            )
            await run_in_threadpool(
                lambda: self._outbox.failed(
                    p.id, attempt=delivery.attempt, error=error, retry_at=retry_at
                )
            )
        except Exception:  # the report was lost: the lease expires and the claim retries it
            log.exception("webhook for %s: could not record attempt %d", p.id, delivery.attempt)

    async def _post(self, p: Prediction) -> tuple[str, bool] | None:
        """None when delivered, else (what went wrong, whether retrying is pointless)."""
        assert p.webhook is not None
        fmt = p.options.get("webhook_format", WAVESPEED)
        body = json.dumps(self._render(p), separators=(",", ":")).encode()
        timestamp = int(self._clock())
        secret = self._secrets.secret_for(p.owner)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": p.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": _SIGNERS[fmt](secret, p.id, timestamp, body),
        }
        try:
            status = await self._fetcher.post(
                p.webhook, body, headers=headers, timeout_s=self._timeout_s
            )
        except FetchError as exc:
            return exc.message.removeprefix("webhook: "), isinstance(exc, AddressRefused)
        if 200 <= status < 300:
            return None
        return f"receiver answered HTTP {status}", status == 410
