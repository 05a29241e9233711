"""One Prediction, rendered as each dialect shows it."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from i2v.api import media
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner

WAVESPEED_STATUS = {
    Status.QUEUED: "created",
    Status.RUNNING: "processing",
    Status.SUCCEEDED: "completed",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}
RUNCOMFY_STATUS = {
    Status.QUEUED: "in_queue",
    Status.RUNNING: "in_progress",
    Status.SUCCEEDED: "completed",
    Status.FAILED: "completed",
    Status.CANCELLED: "cancelled",
}
RUNCOMFY_RESULT = {
    Status.QUEUED: "in_queue",
    Status.RUNNING: "in_progress",
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as WaveSpeed writes it."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Views:
    def __init__(self, base_url: str, signer: UrlSigner, storage: Storage) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.storage = storage

    def output_url(self, p: Prediction) -> str | None:
        if p.status is not Status.SUCCEEDED or not p.output_key:
            return None
        return media.url(self.base_url, self.signer, p.output_key)

    # -- WaveSpeed -----------------------------------------------------------------

    @staticmethod
    def reads_storage(p: Prediction) -> bool:
        return bool(p.status is Status.SUCCEEDED and p.options.get("enable_base64_output"))

    def wavespeed(self, p: Prediction, *, with_input: bool = False) -> dict[str, Any]:
        outputs: list[str] = []
        if p.status is Status.SUCCEEDED and p.output_key:
            if p.options.get("enable_base64_output"):
                outputs = [base64.b64encode(self.storage.get_bytes(p.output_key)).decode("ascii")]
            else:
                outputs = [media.url(self.base_url, self.signer, p.output_key)]
        data: dict[str, Any] = {
            "id": p.id,
            "model": p.model,
            "outputs": outputs,
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{p.id}/result"},
            "has_nsfw_contents": list(p.nsfw) if outputs else [],
            "status": WAVESPEED_STATUS[p.status],
            "created_at": iso(p.created_at),
            "error": p.error,
            "timings": {"inference": p.inference_ms or 0},
            # Beyond WaveSpeed: what a poller wants to show while it waits.
            "progress": round(p.progress, 4),
            "seed": p.params.get("seed"),
        }
        if with_input:
            data["input"] = p.input
            data["executionTime"] = p.inference_ms or 0
        return data

    @staticmethod
    def webhook(p: Prediction) -> dict[str, Any] | None:
        """Where the prediction's webhook stands (beyond WaveSpeed: a hook that never
        arrived is otherwise invisible to its owner)."""
        if p.webhook is None:
            return None
        if p.webhook_done_at is None:
            state = "pending"
        else:
            state = "failed" if p.webhook_error else "delivered"
        return {
            "url": p.webhook,
            "status": state,
            "attempts": p.webhook_attempts,
            "error": p.webhook_error,
            "finished_at": iso(p.webhook_done_at),
        }

    # -- RunComfy ------------------------------------------------------------------

    def runcomfy_links(self, p: Prediction) -> dict[str, str]:
        base = f"{self.base_url}/v1/requests/{p.id}"
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    def runcomfy_status(self, p: Prediction, queue_position: int | None) -> dict[str, Any]:
        links = self.runcomfy_links(p)
        body: dict[str, Any] = {"request_id": p.id, "status": RUNCOMFY_STATUS[p.status]}
        if p.status is Status.QUEUED and queue_position is not None:
            body["queue_position"] = queue_position
        if p.status is Status.RUNNING:
            body["progress"] = round(p.progress, 4)
        body["status_url"] = links["status_url"]
        body["result_url"] = links["result_url"]
        return body

    def runcomfy_result(self, p: Prediction) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": p.id, "status": RUNCOMFY_RESULT[p.status]}
        url = self.output_url(p)
        if url is not None:
            body["output"] = {"video": url}
        if p.status is Status.FAILED:
            body["error"] = p.error
        body["created_at"] = iso(p.created_at)
        body["finished_at"] = iso(p.finished_at)
        body["seed"] = p.params.get("seed")
        return body
