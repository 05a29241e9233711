"""Removing what a prediction owns: one function for every path that forgets one
(a client's delete, a retention sweep)."""

from __future__ import annotations

from i2v.domain.prediction import Prediction
from i2v.storage.base import Storage
from i2v.storage.keys import prediction_keys


def delete_objects(storage: Storage, p: Prediction) -> None:
    """Delete every object `p` may own: its inputs and each attempt's output. Objects
    that were never written (or are already gone) are skipped."""
    for key in prediction_keys(p):
        storage.delete(key)
