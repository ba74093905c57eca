"""One thread through the logs: the formatters, `configure`, the Faust worker's logging, the
per-record debug lines of the processor and the projector runtime, and the CLI's log options."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import typer

from cqrs import logs
from cqrs.cli import boot
from pipeline.processor import ProcessorConfig, TopicNames
from pipeline.processor.memory import MemoryBroker, drain
from projections.postgres.fake import FakeStore
from projections.runtime import BatchProcessor, ProjectorApp, SourceRecord, make_worker
from tests.support.events import as_records, to_envelope, user_created
from topics import UserNameChanged, read_headers

SHARED = ("ts", "level", "logger", "event", "command_id", "correlation_id", "stream_id",
          "event_id", "partition", "offset")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`configure` replaces the root logger's handlers (pytest's among them): put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(err: str) -> list[dict[str, Any]]:
    """Every line of `err` as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def record(message: str = "applied", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("projections.runtime", logging.DEBUG, __file__, 1, message, (), None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_json_puts_the_shared_fields_first_then_the_rest() -> None:
    line = logs.JsonFormatter().format(record(
        projector="postgres", offset=7, partition=2, event_id="user-u1@1", stream_id="user-u1",
        correlation_id="req-1", command_id="c-1", fields={"version": 1}, unset=None))
    document = json.loads(line)
    assert list(document)[:10] == list(SHARED)
    assert document["level"] == "debug"
    assert document["logger"] == "projections.runtime"
    assert document["event"] == "applied"
    assert (document["projector"], document["version"]) == ("postgres", 1)
    assert "unset" not in document
    assert datetime.fromisoformat(document["ts"]).tzinfo is not None


def test_json_keeps_exceptions_and_odd_values_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("it",),
                                 sys.exc_info())
    made.when = datetime(2024, 1, 1, tzinfo=UTC)
    line = logs.JsonFormatter().format(made)
    assert "\n" not in line
    document = json.loads(line)
    assert document["event"] == "failed it"
    assert "ValueError: bad" in document["exception"]
    assert document["when"] == "2024-01-01 00:00:00+00:00"


def test_text_format_is_one_readable_line() -> None:
    line = logs.TextFormatter().format(record(command_id="c-1", stream_id="user-u1",
                                              error="two words"))
    assert " DEBUG    projections.runtime: applied command_id=c-1 stream_id=user-u1 " in line
    assert line.endswith('error="two words"')


def test_configure_sends_faust_mode_and_aiokafka_records_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO", "json")
    for name in ("faust.worker", "mode.services", "aiokafka.consumer.group_coordinator",
                 "uvicorn.error", "projections.runtime"):
        logging.getLogger(name).info("hello from %s", name, extra={"stream_id": "user-u1"})
    logging.getLogger("aiokafka").debug("below the level")
    found = lines(capsys.readouterr().err)
    assert [line["logger"] for line in found] == [
        "faust.worker", "mode.services", "aiokafka.consumer.group_coordinator", "uvicorn.error",
        "projections.runtime"]
    assert all(line["stream_id"] == "user-u1" and line["level"] == "info" for line in found)


def test_configure_text_and_bad_options() -> None:
    logs.configure("warning", "text")
    assert isinstance(logging.getLogger().handlers[0].formatter, logs.TextFormatter)
    with pytest.raises(ValueError, match="log format"):
        logs.configure("INFO", "xml")
    with pytest.raises(ValueError, match="log level"):
        logs.configure("chatty", "json")


@pytest.mark.parametrize("level", ["info", "warning"])
def test_the_faust_worker_logs_through_our_handler(
    level: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """Faust's worker replaces the root's handlers when it starts (mode's `setup_logging`):
    given our configuration, what it installs is ours, and no spinner codes come between."""
    app = ProjectorApp("test-logs", broker="kafka://127.0.0.1:1", autodiscover=False,
                       web_enabled=False)
    worker = make_worker(app, level, logs.logging_config(level, "json"))
    worker._setup_logging()  # what the worker does first when it starts
    try:
        print("a stray print")  # the worker redirects stdout into the logs
        for name in ("faust.worker", "mode.supervisors", "aiokafka.conn"):
            logging.getLogger(name).warning("from %s", name, extra={"partition": 1})
        logging.getLogger("faust.transport").info("info line")
    finally:
        worker.exit_stack.close()
    out = capsys.readouterr()
    assert "\x1b" not in out.err + out.out
    found = lines(out.err)
    by_logger = {line["logger"]: line for line in found}
    assert {"faust.worker", "mode.supervisors", "aiokafka.conn"} <= set(by_logger)
    assert by_logger["aiokafka.conn"]["partition"] == 1
    assert any(line["event"] == "a stray print" for line in found)
    assert ("faust.transport" in by_logger) == (level == "info")


def test_cli_log_options_resolve_command_then_root_then_default() -> None:
    ctx = typer.Context(typer.main.TyperCommand("cqrs"))
    assert boot.logging_config(ctx)["root"]["level"] == "INFO"
    boot.keep_log_options(ctx, "debug", "text")
    config = boot.logging_config(ctx)
    assert config["root"]["level"] == "DEBUG"
    assert config["formatters"]["cqrs"]["()"] is logs.TextFormatter
    assert boot.logging_config(ctx, "warning")["root"]["level"] == "WARNING"
    with pytest.raises(typer.BadParameter):
        boot.keep_log_options(ctx, None, "xml")
    with pytest.raises(typer.BadParameter):
        boot.logging_config(ctx, "chatty")


def test_the_projector_logs_each_applied_event_and_its_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    created = user_created("u1")
    renamed = to_envelope(UserNameChanged(name="U One"), "user-u1", 2, "user-u1@2",
                          created.occurred_at, "c-2", "req-9")
    records = as_records([created, renamed], topic="t.events")
    processor = BatchProcessor("postgres", FakeStore(), _NoDeadLetters())

    async def run() -> None:
        await processor.start()
        await processor.process(records)

    with caplog.at_level(logging.DEBUG, logger="projections.runtime"):
        asyncio.run(run())
    applied = [r for r in caplog.records if r.getMessage() == "applied"]
    assert [(r.event_id, r.command_id, r.correlation_id) for r in applied] == [  # type: ignore[attr-defined]
        ("user-u1@1", None, None), ("user-u1@2", "c-2", "req-9")]
    second = json.loads(logs.JsonFormatter().format(applied[1]))
    assert {k: second[k] for k in SHARED[4:]} == {
        "command_id": "c-2", "correlation_id": "req-9", "stream_id": "user-u1",
        "event_id": "user-u1@2", "partition": records[1].partition, "offset": records[1].offset}
    [batch] = [r for r in caplog.records if r.getMessage() == "batch"]
    assert batch.totals == {"consumed": 2, "applied": 2, "skipped": 0, "parked": 0,  # type: ignore[attr-defined]
                            "dead_lettered": 0}


class _NoDeadLetters:
    async def send(self, record: SourceRecord, error: BaseException) -> None:
        raise AssertionError(f"dead-lettered {record}: {error}")


def test_the_processor_carries_the_correlation_id_to_events_and_its_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ProcessorConfig(kafka={}, topics=TopicNames("c", "e", "a", "r", "dlq"),
                             instance_id="t", batch_ms=1)
    broker = MemoryBroker.for_config(config, 1)
    command = {"command_id": "c-1", "type": "CreateUser", "aggregate_id": "u1",
               "data": {"email": "u1@example.com", "name": "User One"},
               "issued_at": "2024-05-01T00:00:00Z", "correlation_id": "req-1"}
    broker.append("c", 0, b"user-u1", json.dumps(command).encode(),
                  [("correlation_id", b"req-1")])
    processor = broker.processor(config, lambda: datetime(2024, 5, 1, tzinfo=UTC))
    with caplog.at_level(logging.DEBUG, logger="pipeline.processor"):
        processor.start()
        drain(processor, broker)
    [event] = broker.records("e")
    assert read_headers(event.headers)["correlation_id"] == "req-1"
    [line] = [r for r in caplog.records if r.getMessage() == "accepted"]
    assert (line.command_id, line.correlation_id, line.event_ids) == (  # type: ignore[attr-defined]
        "c-1", "req-1", ["user-u1@1"])


def test_the_processor_logs_one_partition_as_partition_and_several_as_partitions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ProcessorConfig(kafka={}, topics=TopicNames("c", "e", "a", "r", "dlq"),
                             instance_id="t", batch_ms=1)
    broker = MemoryBroker.for_config(config, 1)
    broker.append("c", 0, b"user-u1", b"not json")
    processor = broker.processor(config, lambda: datetime(2024, 5, 1, tzinfo=UTC))
    with caplog.at_level(logging.DEBUG, logger="pipeline.processor"):
        processor.start()
        drain(processor, broker)
    by_message = {r.getMessage(): r for r in caplog.records}
    assert by_message["assigned"].partitions == [0]  # type: ignore[attr-defined]
    assert by_message["batch committed"].partitions == [0]  # type: ignore[attr-defined]
    for record in caplog.records:
        assert isinstance(getattr(record, "partition", 0), int), record.getMessage()
