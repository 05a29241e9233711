"""The canonical prediction: one row in the store, rendered by each API dialect."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from i2v.domain.status import Status


@dataclass(frozen=True)
class Prediction:
    """A generation job as the store holds it.

    `params` is the validated, normalized request (prompt, seed, frames, size,
    storage keys of the input images, options); `input` is what the client sent
    (images replaced by their URLs), echoed back by the dialects.
    """

    id: str
    owner: str  # hash of the API key that created it
    model: str  # catalog route path, e.g. "bytedance/dreamina-v3.0/image-to-video-1080p"
    engine: str
    status: Status
    params: dict[str, Any]
    input: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = 0
    max_attempts: int = 3
    lease_owner: str | None = None
    lease_until: datetime | None = None
    progress: float = 0.0  # 0..1 of the current attempt
    progress_message: str = ""
    output_key: str | None = None  # storage key of the MP4 once succeeded
    error: str = ""
    inference_ms: int | None = None
    cancel_requested: bool = False
    nsfw: list[bool] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # platform flags: base64, sync...
    webhook: str | None = None  # URL told of the outcome once the prediction has finished
    webhook_attempts: int = 0  # deliveries tried so far
    webhook_done_at: datetime | None = None  # delivered, or given up (then webhook_error)
    webhook_error: str = ""  # what went wrong with the last attempt

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


def attempt_output_key(prediction_id: str, attempt: int) -> str:
    """Where an attempt's video lives: one key per attempt, so a late write from a
    replaced worker can never overwrite the attempt that replaced it."""
    return f"outputs/{prediction_id}/{attempt}.mp4"
