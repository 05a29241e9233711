"""Webhook secrets: one per owner, derived from the server's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


class WebhookSecrets:
    """One secret per owner, derived from the server's: nothing to store, and stable."""

    def __init__(self, server_secret: bytes) -> None:
        self._key = server_secret

    def secret_for(self, owner: str) -> str:
        digest = hmac.new(self._key, b"webhook-secret\n" + owner.encode(), hashlib.sha256)
        return SECRET_PREFIX + base64.b64encode(digest.digest()).decode("ascii")
