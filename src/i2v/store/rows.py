"""Between a `predictions` row and the domain `Prediction`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from i2v.domain.job import JobSpec
from i2v.domain.prediction import Flags, Prediction
from i2v.domain.status import Status
from i2v.store.records import KeyRecord, Upload

# The typed fields stored as JSON, by the column that holds each (older names).
_JSON_COLUMNS = {"spec": "params", "flags": "options"}
PREDICTION_FIELDS = tuple(f.name for f in fields(Prediction) if f.name not in _JSON_COLUMNS)


def prediction_values(p: Prediction, *, now: datetime) -> dict[str, Any]:
    values = {name: getattr(p, name) for name in PREDICTION_FIELDS}
    values["status"] = Status(p.status).value
    values["params"] = p.spec.to_json()
    values["input"] = dict(p.input)
    values["options"] = p.flags.to_json()
    values["nsfw"] = [bool(flag) for flag in p.nsfw]
    values["updated_at"] = now
    return values


def to_prediction(m: Mapping[Any, Any]) -> Prediction:
    values = {name: m[name] for name in PREDICTION_FIELDS}
    values["spec"] = JobSpec.from_json(m["params"])
    values["flags"] = Flags.from_json(m["options"] or {})
    values["status"] = Status(m["status"])
    values["cancel_requested"] = bool(m["cancel_requested"])
    values["nsfw"] = [bool(flag) for flag in m["nsfw"] or []]
    values["progress"] = float(m["progress"])
    return Prediction(**values)


def to_key(row: sa.Row[Any]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        key_hash=m["key_hash"],
        name=m["name"],
        prefix=m["prefix"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        max_queued=m["max_queued"],
        max_running=m["max_running"],
        rate_per_minute=m["rate_per_minute"],
        weight=m["weight"],
        admin=bool(m["admin"]),
    )


def to_upload(row: sa.Row[Any]) -> Upload:
    m = row._mapping
    return Upload(
        key=m["key"],
        owner=m["owner"],
        size=m["size"],
        created_at=m["created_at"],
        written_at=m["written_at"],
        used_at=m["used_at"],
    )
