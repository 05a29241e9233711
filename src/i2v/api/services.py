"""What the API needs, built by the CLI and handed to create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from i2v.domain.catalog import Catalog
from i2v.domain.settings import Settings
from i2v.intake.fetch import Fetcher
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner
from i2v.store.sql import Store

if TYPE_CHECKING:  # webhooks render with views, and views import this module
    from i2v.api.webhooks import WebhookSecrets, WebhookSender


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    storage: Storage
    signer: UrlSigner
    catalog: Catalog
    fetcher: Fetcher
    webhook_secrets: WebhookSecrets
    webhooks: WebhookSender | None = None  # None: this process sends no webhooks
