"""The webhook sender: claims owed deliveries from the outbox and posts them."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from i2v.delivery.poster import WebhookPoster
from i2v.delivery.retry import RetryPolicy
from i2v.delivery.secrets import WebhookSecrets
from i2v.delivery.signatures import SIGNERS
from i2v.domain.errors import AddressRefused, FetchError
from i2v.domain.prediction import Prediction
from i2v.store.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

_SHUTDOWN_GRACE_S = 3.0

Render = Callable[[Prediction], dict[str, Any]]  # a webhook's body (`i2v.dialects.payload`)
# Told how each attempt ended: "delivered", "retrying" or "gave_up" (`i2v.metrics`).
Outcome = Callable[[str], None]


def _ignore(outcome: str) -> None:
    pass


class WebhookSender:
    """Claims owed deliveries and posts them; `run` until cancelled (one per API process)."""

    def __init__(
        self,
        outbox: Outbox,
        poster: WebhookPoster,
        secrets: WebhookSecrets,
        render: Render,
        *,
        policy: RetryPolicy,
        timeout_s: float,
        poll_s: float,
        concurrency: int = 16,
        per_owner: int | None = None,
        clock: Callable[[], float] = time.time,
        on_outcome: Outcome = _ignore,
    ) -> None:
        """`per_owner`: the sends one owner may have in flight at once (default: a quarter
        of `concurrency`), so one owner's hanging receiver leaves slots for everyone else."""
        self._outbox = outbox
        self._on_outcome = on_outcome
        self._poster = poster
        self._secrets = secrets
        self._render = render
        self._policy = policy
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._concurrency = concurrency
        self._per_owner = per_owner if per_owner is not None else max(1, concurrency // 4)
        self._clock = clock

    async def run(self) -> None:
        """Keep up to `concurrency` sends in flight, claiming more as each one ends, so a
        receiver that never answers holds one slot for one timeout, not everyone's queue.
        Claims go round-robin over owners, at most `per_owner` in flight each: one owner's
        backlog to a hanging receiver cannot take every slot, and another owner's delivery
        is claimed at the next poll. When cancelled (shutdown), claims stop and the sends in
        flight get a moment to end."""
        inflight: dict[asyncio.Task[None], str] = {}  # each send, and its owner
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
                                per_owner=self._per_owner,
                                busy=Counter(inflight.values()),
                            )
                        )
                    except Exception:  # the database may be away a moment; the outbox keeps it
                        log.exception("webhook sender: claiming deliveries failed; retrying")
                for d in claimed:
                    inflight[asyncio.create_task(self._send(d))] = d.prediction.owner
                if claimed and len(claimed) == free:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                elif inflight:
                    await asyncio.wait(
                        inflight, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await asyncio.sleep(self._poll_s)
                inflight = {task: owner for task, owner in inflight.items() if not task.done()}
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
                self._on_outcome("delivered")
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
            self._on_outcome("gave_up" if retry_at is None else "retrying")
        except Exception:  # the report was lost: the lease expires and the claim retries it
            log.exception("webhook for %s: could not record attempt %d", p.id, delivery.attempt)

    async def _post(self, p: Prediction) -> tuple[str, bool] | None:
        """None when delivered, else (what went wrong, whether retrying is pointless)."""
        assert p.webhook is not None
        body = json.dumps(self._render(p), separators=(",", ":")).encode()
        timestamp = int(self._clock())
        secret = self._secrets.secret_for(p.owner)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": p.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": SIGNERS[p.flags.dialect](secret, p.id, timestamp, body),
        }
        try:
            status = await self._poster.post(
                p.webhook, body, headers=headers, timeout_s=self._timeout_s
            )
        except FetchError as exc:
            return exc.message.removeprefix("webhook: "), isinstance(exc, AddressRefused)
        if 200 <= status < 300:
            return None
        return f"receiver answered HTTP {status}", status == 410
