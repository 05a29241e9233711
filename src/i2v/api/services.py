"""What the API needs, built by the CLI and handed to create_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from i2v.api.space import DiskGuard
from i2v.domain.catalog import Catalog
from i2v.domain.settings import Settings
from i2v.intake.decoder import DecodePool
from i2v.intake.fetch import Fetcher
from i2v.metrics import Metrics
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner
from i2v.store import Store


class WebhookSecretSource(Protocol):
    """Each owner's webhook secret (`i2v.delivery.secrets.WebhookSecrets`): the API shows
    it, delivery signs with it."""

    def secret_for(self, owner: str) -> str: ...


class BackgroundJob(Protocol):
    """Work the API process runs beside its requests until shutdown cancels it (the
    webhook sender, `i2v.delivery.sender.WebhookSender`)."""

    async def run(self) -> None: ...


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    storage: Storage
    signer: UrlSigner
    catalog: Catalog
    fetcher: Fetcher
    webhook_secrets: WebhookSecretSource
    webhooks: BackgroundJob | None = None  # None: this process sends no webhooks
    metrics: Metrics = field(default_factory=Metrics)  # this process's, served at /metrics
    # Submitted images are decoded here, in child processes under a time budget; the
    # children start with the app (lifespan) and stop with it.
    decoder: DecodePool = field(default_factory=DecodePool)
    # Submits are refused while the media disk is nearly full; None: not checked (S3).
    disk: DiskGuard | None = None
