"""The canonical prediction: one row in the store, rendered by each API dialect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from i2v.domain.job import JobSpec
from i2v.domain.status import Status

WAVESPEED = "wavespeed"
RUNCOMFY = "runcomfy"
DIALECTS = (WAVESPEED, RUNCOMFY)


@dataclass(frozen=True)
class Flags:
    """What a client asked of the platform beside the job itself: how the result is
    returned and checked. Stored in the row's `options` column."""

    enable_base64_output: bool = False
    enable_sync_mode: bool = False
    enable_safety_checker: bool = True
    dialect: str = WAVESPEED  # the API dialect that accepted it: webhooks speak it too
    base_url: str = ""  # where that client reached us: links in webhooks are built on it

    def to_json(self) -> dict[str, Any]:
        return {
            "enable_base64_output": self.enable_base64_output,
            "enable_sync_mode": self.enable_sync_mode,
            "enable_safety_checker": self.enable_safety_checker,
            "dialect": self.dialect,
            "base_url": self.base_url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Flags:
        # "webhook_format": how rows written before the flags were typed named the dialect
        dialect = data.get("dialect", data.get("webhook_format", WAVESPEED))
        return cls(
            enable_base64_output=bool(data.get("enable_base64_output", False)),
            enable_sync_mode=bool(data.get("enable_sync_mode", False)),
            enable_safety_checker=bool(data.get("enable_safety_checker", True)),
            dialect=dialect if dialect in DIALECTS else WAVESPEED,
            base_url=str(data.get("base_url", "")),
        )


@dataclass(frozen=True)
class Prediction:
    """A generation job as the store holds it.

    `spec` is the job itself, validated and normalized (see `i2v.domain.job`); `input`
    is what the client sent (inline images shortened), echoed back by the dialects.
    """

    id: str
    owner: str  # hash of the API key that created it
    model: str  # catalog route path, e.g. "bytedance/dreamina-v3.0/image-to-video-1080p"
    engine: str
    status: Status
    spec: JobSpec
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
    flags: Flags = Flags()
    webhook: str | None = None  # URL told of the outcome once the prediction has finished
    webhook_attempts: int = 0  # deliveries tried so far
    webhook_done_at: datetime | None = None  # delivered, or given up (then webhook_error)
    webhook_error: str = ""  # what went wrong with the last attempt
    expired_at: datetime | None = None  # its media were deleted by retention at this time

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal
