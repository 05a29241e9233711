"""What every dialect's views share: where links point, and the moments they print."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from i2v.dialects import links
from i2v.domain.prediction import Prediction
from i2v.domain.retention import Retention
from i2v.domain.status import Status
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as WaveSpeed writes it."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Views(ABC):
    """One Prediction as one dialect shows it, with links on the base URL its client uses.

    The API answers polls, event streams and submits with these; webhook delivery
    posts `hook`."""

    def __init__(
        self,
        base_url: str,
        signer: UrlSigner,
        storage: Storage,
        retention: Retention | None = None,
    ) -> None:
        """`retention`: how long media are kept (None: forever)."""
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.storage = storage
        self.retention = retention or Retention(hours=0)

    def has_output(self, p: Prediction) -> bool:
        """Whether `p` succeeded and its video is still kept."""
        return p.status is Status.SUCCEEDED and bool(p.output_key) and p.expired_at is None

    def output_url(self, p: Prediction) -> str | None:
        if not self.has_output(p) or not p.output_key:
            return None
        expires = self.retention.expires_at(p)
        not_after = None if expires is None else math.ceil(expires.timestamp())
        return links.url(self.base_url, self.signer, p.output_key, not_after=not_after)

    def expiry(self, p: Prediction) -> dict[str, Any]:
        """Beyond both dialects: when `p`'s media expire (null: kept while it runs, or
        forever), and once they did, a line saying so."""
        fields: dict[str, Any] = {"expires_at": iso(self.retention.expires_at(p))}
        if p.expired_at is not None:
            fields["expired_at"] = iso(p.expired_at)
            fields["expired"] = (
                f"the outputs and inputs were deleted at {iso(p.expired_at)}, "
                f"{self.retention.hours:g} hours after the prediction finished"
            )
        return fields

    def reads_storage(self, p: Prediction) -> bool:
        """Whether rendering `p` reads its video (so callers render it off the event loop)."""
        return False

    @abstractmethod
    def progress(self, p: Prediction, queue_position: int | None) -> dict[str, Any]:
        """While `p` waits or runs: what a status poll answers."""

    @abstractmethod
    def result(self, p: Prediction) -> dict[str, Any]:
        """The result view (without any envelope): outputs once `p` succeeded."""

    @abstractmethod
    def hook(self, p: Prediction) -> dict[str, Any]:
        """The body of `p`'s webhook."""
