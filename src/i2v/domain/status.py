"""The life of a prediction: its states and the named transitions between them.

    queued ──claim──> running ──succeed──> succeeded
      │  ^              │ │
      │  └──requeue─────┘ └──fail──> failed
      └─────cancel──────────┬──────> cancelled
                running ────┘ (cooperative, via the engine's step callback)

The store applies a transition as one conditional UPDATE whose WHERE clause is
`status IN transition.sources`; nothing else writes a status.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    QUEUED = "queued"  #: accepted, waiting for a worker
    RUNNING = "running"  #: claimed by a worker holding a lease
    SUCCEEDED = "succeeded"  #: output object exists
    FAILED = "failed"  #: ended with an error message
    CANCELLED = "cancelled"  #: cancelled by its owner

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[Status]
    target: Status


CLAIM = Transition("claim", frozenset({Status.QUEUED}), Status.RUNNING)
# An expired lease hands the job back to the queue (or fails it after max attempts).
REQUEUE = Transition("requeue", frozenset({Status.RUNNING}), Status.QUEUED)
SUCCEED = Transition("succeed", frozenset({Status.RUNNING}), Status.SUCCEEDED)
FAIL = Transition("fail", frozenset({Status.QUEUED, Status.RUNNING}), Status.FAILED)
CANCEL = Transition("cancel", frozenset({Status.QUEUED, Status.RUNNING}), Status.CANCELLED)
