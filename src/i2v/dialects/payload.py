"""Webhook payloads: a prediction as the dialect that accepted it shows it."""

from __future__ import annotations

from typing import Any

from i2v.dialects.runcomfy import RunComfyViews
from i2v.dialects.views import Views
from i2v.dialects.wavespeed import WaveSpeedViews
from i2v.domain.prediction import RUNCOMFY, WAVESPEED, Prediction
from i2v.domain.retention import Retention
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner

VIEWS: dict[str, type[Views]] = {WAVESPEED: WaveSpeedViews, RUNCOMFY: RunComfyViews}


class WebhookPayload:
    """Renders a webhook's body: WaveSpeed's prediction object with its input, or
    RunComfy's result, with links on the base URL the client reached us at."""

    def __init__(
        self, signer: UrlSigner, storage: Storage, retention: Retention | None = None
    ) -> None:
        self._signer = signer
        self._storage = storage
        self._retention = retention

    def __call__(self, p: Prediction) -> dict[str, Any]:
        views = VIEWS.get(p.flags.dialect, WaveSpeedViews)
        return views(p.flags.base_url, self._signer, self._storage, self._retention).hook(p)
