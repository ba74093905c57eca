"""Logs: one JSON object (or one text line) per record on stderr; entry points configure, once.

Every process writes the same fields, so one id can be followed through every log:

- always `ts` (UTC, ISO 8601), `level`, `logger`, `event` (the message);
- when known, in this order, `command_id`, `correlation_id`, `stream_id`, `event_id`,
  `partition` (one, an int), `partitions` (several, a list of ints), `offset`; then whatever
  else the record carries.

Libraries never configure logging: they log with `extra=` (`log.debug("applied",
extra={"event_id": ..., "stream_id": ...})`, or a `fields` dict for names a record may not take).
Entry points call `configure(level, fmt)`; the Faust worker is handed `logging_config(level,
fmt)` (`projections.runtime.run_worker`), so Faust's, mode's and aiokafka's records, and
uvicorn's, go through the same formatter.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["FORMATS", "SHARED_FIELDS", "JsonFormatter", "TextFormatter", "apply",
           "configure", "logging_config"]

Format = Literal["json", "text"]
FORMATS: tuple[Format, ...] = ("json", "text")
SHARED_FIELDS = ("command_id", "correlation_id", "stream_id", "event_id", "partition",
                 "partitions", "offset")
"""The names every process uses for the ids a command and its events carry."""

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields: shared names first, then the rest, then a `fields` dict's."""
    own = {name: value for name, value in vars(record).items()
           if name not in _STANDARD and value is not None}
    fields: dict[str, Any] = {name: own.pop(name) for name in SHARED_FIELDS if name in own}
    nested = own.pop("fields", None)
    fields.update(own)
    if isinstance(nested, dict):
        fields.update(nested)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "event", ...fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name, value in record_fields(record).items():
            document.setdefault(name, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: event key=value ...`, for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{name}={_text(value)}" for name, value in record_fields(record).items())
        line = (f"{_timestamp(record)} {record.levelname:<8} {record.name}: "
                f"{record.getMessage()}{' ' + pairs if pairs else ''}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _text(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"=" for c in value):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _level(level: str | int) -> str:
    name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    if not isinstance(logging.getLevelName(name), int):
        raise ValueError(f"unknown log level {level!r} (debug, info, warning, error, critical)")
    return name


def logging_config(level: str | int = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: every record of the process, at `level` and
    above, to stderr in `fmt` (`json` or `text`). Loggers created before keep working."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (json or text)")
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cqrs": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "cqrs"}},
        "root": {"level": _level(level), "handlers": ["stderr"]},
    }


def configure(level: str | int = "INFO", fmt: str = "json") -> None:
    """Send every log record of the process to stderr as `fmt` lines (entry points only)."""
    apply(logging_config(level, fmt))


def apply(config: dict[str, Any]) -> None:
    """Install a `logging_config` document (a copy: `dictConfig` and mode consume theirs)."""
    logging.config.dictConfig(copy.deepcopy(config))
