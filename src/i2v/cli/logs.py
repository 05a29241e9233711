"""Logging for the long-running commands (`i2v serve`, `i2v worker`): configured once,
here, from Settings; every logger (ours, uvicorn's access and error logs) writes through
the same handler, as text or, with `I2V_LOG_FORMAT=json`, as one JSON object per line.

Events carry their fields as `extra=` (see `EVENT_FIELDS`): the prediction id, the route,
the key id (a prefix of the key's SHA-256, the owner id; never the key), the attempt and
the duration. Text lines show them as `key=value` after the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields an event may carry (`extra=`), in the order text lines show them.
EVENT_FIELDS = (
    "event",
    "prediction_id",
    "route",
    "key_id",
    "attempt",
    "status",
    "duration_s",
    "queue_s",
    "error",
    "client",
    "method",
    "path",
    "http_status",
)
ACCESS_LOGGER = "uvicorn.access"


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Send every log record to stderr in `log_format` ("text" or "json"), replacing
    whatever handlers were there (uvicorn is told not to install its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event fields of `record`; for uvicorn's access log, its request line as fields."""
    found = {name: getattr(record, name) for name in EVENT_FIELDS if hasattr(record, name)}
    if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
        client, method, path, _version, status = record.args
        found.update(client=client, method=method, path=path, http_status=status)
    return found


class TextFormatter(logging.Formatter):
    """The message, then the event's fields as `key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = fields(record)
        if record.name == ACCESS_LOGGER:
            return line  # the message is already the request line
        if extra:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in extra.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the event's fields, and
    the traceback of a logged exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text
