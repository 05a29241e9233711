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
        batch: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._fetcher = fetcher
        self._secrets = secrets
        self._render = render
        self._policy = policy
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._batch = batch
        self._clock = clock

    async def run(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except Exception:  # the database may be briefly away; the outbox keeps the work
                log.exception("webhook sender: claiming deliveries failed; retrying")
                sent = 0
            if sent < self._batch:
                await asyncio.sleep(self._poll_s)

    async def send_due(self) -> int:
        """Claim what is due and send it, concurrently; returns how many were claimed."""
        # The lease outlasts a send (timeout) plus the report, so no other sender takes it.
        lease = self._timeout_s + 30.0
        due = await run_in_threadpool(
            lambda: self._outbox.claim(limit=self._batch, lease_seconds=lease)
        )
        await asyncio.gather(*(self._send(d) for d in due))
        return len(due)

    async def _send(self, delivery: Delivery) -> None:
        p = delivery.prediction
        assert p.webhook is not None  # the outbox only hands out rows with one
        outcome = await self._post(p)
        if outcome is None:
            await run_in_threadpool(lambda: self._outbox.delivered(p.id, attempt=delivery.attempt))
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
            response = await self._fetcher.post(
                p.webhook, body, headers=headers, timeout_s=self._timeout_s
            )
        except FetchError as exc:
            return exc.message.removeprefix("webhook: "), isinstance(exc, AddressRefused)
        if 200 <= response.status_code < 300:
            return None
        return f"receiver answered HTTP {response.status_code}", response.status_code == 410
