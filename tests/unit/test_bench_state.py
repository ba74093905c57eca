"""`bench.stage_state`: the snapshots it writes are the processor's, read back by its restore;
`cqrs bench --only` names stages that exist. No services."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.runner import STAGE_NAMES, run
from bench.stage_state import READS, user_stream
from pipeline.processor import records
from pipeline.processor.config import TopicNames
from pipeline.processor.records import InboundRecord
from pipeline.processor.restore import snapshot_of

NAMES = TopicNames(commands="c", events="e", aggregates="a", command_results="r",
                   commands_dlq="d")


@pytest.mark.parametrize("number", [0, 1, 2, 9, 123_457])
def test_a_bench_snapshot_restores_to_the_stream_it_was_written_from(number: int) -> None:
    stream = user_stream(number)
    written = records.snapshot(stream, NAMES, 3, datetime(2026, 1, 1, tzinfo=UTC))
    read = InboundRecord("a", 3, 0, written.key, written.value)

    assert snapshot_of(read) == (stream.stream_id, stream)
    assert stream.version == len(stream.recent_command_ids) == 1 + number % 3
    assert stream.state is not None
    assert stream.state.model_dump()["active"] == (number % 10 != 9)


def test_every_read_of_the_state_stage_is_in_the_report() -> None:
    from bench.report import STATE_READS

    assert tuple(STATE_READS) == READS


def test_only_refuses_a_stage_that_does_not_exist(tmp_path: Path) -> None:
    assert "state" in STAGE_NAMES
    with pytest.raises(ValueError, match="unknown stages"):
        run(None, "smoke", tmp_path, only=["stat"])  # type: ignore[arg-type]
