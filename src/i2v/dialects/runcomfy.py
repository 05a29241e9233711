"""The RunComfy request views.

Result statuses are succeeded|failed|in_queue|in_progress|cancelled; status view
statuses are in_queue (with queue_position)|in_progress|completed|cancelled.
"""

from __future__ import annotations

from typing import Any

from i2v.dialects.views import Views, iso
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status

STATUS = {
    Status.QUEUED: "in_queue",
    Status.RUNNING: "in_progress",
    Status.SUCCEEDED: "completed",
    Status.FAILED: "completed",
    Status.CANCELLED: "cancelled",
}
RESULT = {
    Status.QUEUED: "in_queue",
    Status.RUNNING: "in_progress",
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


class RunComfyViews(Views):
    def links(self, p: Prediction) -> dict[str, str]:
        """Where to poll, fetch and cancel the request (the submit answer)."""
        base = f"{self.base_url}/v1/requests/{p.id}"
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    def progress(self, p: Prediction, queue_position: int | None) -> dict[str, Any]:
        links = self.links(p)
        body: dict[str, Any] = {"request_id": p.id, "status": STATUS[p.status]}
        if p.status is Status.QUEUED and queue_position is not None:
            body["queue_position"] = queue_position
        if p.status is Status.RUNNING:
            body["progress"] = round(p.progress, 4)
        body["status_url"] = links["status_url"]
        body["result_url"] = links["result_url"]
        return body

    def result(self, p: Prediction) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": p.id, "status": RESULT[p.status]}
        url = self.output_url(p)
        if url is not None:
            body["output"] = {"video": url}
        if p.status is Status.FAILED:
            body["error"] = p.error
        body["created_at"] = iso(p.created_at)
        body["finished_at"] = iso(p.finished_at)
        body["seed"] = p.spec.seed
        body.update(self.expiry(p))  # beyond RunComfy: when the outputs expire
        return body

    def hook(self, p: Prediction) -> dict[str, Any]:
        return self.result(p)
