"""What the API needs, built by the CLI and handed to create_app."""

from __future__ import annotations

from dataclasses import dataclass

from i2v.domain.catalog import Catalog
from i2v.domain.settings import Settings
from i2v.intake.fetch import Fetcher
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner
from i2v.store.sql import Store


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    storage: Storage
    signer: UrlSigner
    catalog: Catalog
    fetcher: Fetcher
