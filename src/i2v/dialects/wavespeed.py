"""The WaveSpeed v3 prediction object: statuses created|processing|completed|failed
(+cancelled), outputs as absolute URLs or base64 (enable_base64_output)."""

from __future__ import annotations

import base64
from typing import Any

from i2v.dialects.views import Views, iso
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status

STATUS = {
    Status.QUEUED: "created",
    Status.RUNNING: "processing",
    Status.SUCCEEDED: "completed",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


def envelope(data: Any) -> dict[str, Any]:
    """A successful answer, as WaveSpeed wraps every one."""
    return {"code": 200, "message": "success", "data": data}


class WaveSpeedViews(Views):
    def reads_storage(self, p: Prediction) -> bool:
        return self.has_output(p) and p.flags.enable_base64_output

    def prediction(self, p: Prediction, *, with_input: bool = False) -> dict[str, Any]:
        """The prediction object; `with_input` adds what GET /predictions/{id} shows."""
        outputs: list[str] = []
        url = self.output_url(p)
        if url is not None and p.output_key:
            if p.flags.enable_base64_output:
                outputs = [base64.b64encode(self.storage.get_bytes(p.output_key)).decode("ascii")]
            else:
                outputs = [url]
        data: dict[str, Any] = {
            "id": p.id,
            "model": p.model,
            "outputs": outputs,
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{p.id}/result"},
            "has_nsfw_contents": list(p.nsfw) if outputs else [],
            "status": STATUS[p.status],
            "created_at": iso(p.created_at),
            "error": p.error,
            "timings": {"inference": p.inference_ms or 0},
            # Beyond WaveSpeed: what a poller wants to show while it waits.
            "progress": round(p.progress, 4),
            "seed": p.spec.seed,
            **self.expiry(p),
        }
        if with_input:
            data["input"] = p.input
            data["executionTime"] = p.inference_ms or 0
        return data

    def progress(self, p: Prediction, queue_position: int | None) -> dict[str, Any]:
        data = self.prediction(p)
        if queue_position is not None:
            data["queue_position"] = queue_position  # beyond WaveSpeed, as RunComfy shows it
        return data

    def result(self, p: Prediction) -> dict[str, Any]:
        return self.prediction(p)

    def hook(self, p: Prediction) -> dict[str, Any]:
        return self.prediction(p, with_input=True)

    @staticmethod
    def webhook_state(p: Prediction) -> dict[str, Any] | None:
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
