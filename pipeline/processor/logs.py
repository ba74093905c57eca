"""Structured logs: one JSON object per line on stderr (stdlib logging, no print)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FIELDS = ("stream_id", "command_id", "partition", "offset", "counts", "outcome", "code", "error")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "event", ...fields}`; fields come from `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            document.update(extra)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure(level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines (composition roots only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
