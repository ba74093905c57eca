"""`bench.report`: issue 10's targets computed from a run's figures, and the latency budget
table in results.md; no services."""

from __future__ import annotations

from typing import Any

from bench.latency import HOPS
from bench.report import (
    PROCESSOR_BEFORE_CMD_S,
    STATE_READS,
    latency_lines,
    markdown,
    state_lines,
    targets,
)


def hops(p50: float, p99: float) -> dict[str, Any]:
    return {hop: {"count": 10, "p50_ms": p50, "p95_ms": p50, "p99_ms": p99, "max_ms": p99,
                  "missing": 0} for hop in HOPS}


def run_at(rate: float, pg: tuple[float, float], search_p99: float) -> dict[str, Any]:
    return {"rate": rate, "commands": 100, "followed": 10,
            "poll_ms": {"postgres": 10, "search_commit": 10, "searchable": 20,
                        "processor_commit": 10},
            "hops": hops(*pg), "postgres": {"p50_ms": pg[0], "p99_ms": pg[1]},
            "search": {"p50_ms": search_p99 / 2, "p99_ms": search_p99}}


STAGES: dict[str, Any] = {
    "kafka": {"rate": 100_000.0},
    "processor": {"defaults": {"rate": 9_000.0}, "100ms": {"rate": 33_000.0}},
    "postgres_sink": {"baseline": {"rate": 40_000.0}, "projector": {"rate": 20_000.0},
                      "events": 30_000},
    "search_sink": {"baseline": {"rate": 10_000.0}, "projector": {"rate": 7_000.0}},
    "handwritten_projector": {"rate": 25_000.0, "count": 29_500},
    "pipeline": {"rate": 5_600.0},
    "latency": {"light": run_at(10.0, (12.0, 40.0), 1_100.0),
                "half_load": run_at(2_800.0, (25.0, 160.0), 1_250.0)},
}


def by_name(found: list[Any]) -> dict[str, Any]:
    return {target.name: target for target in found}


def test_the_issue_targets_from_one_run() -> None:
    found = by_name(targets(STAGES, refresh_ms=1000))
    assert len(found) == 8
    pg_hand = found["postgres projector / hand-written (same store work, no Faust)"]
    assert (pg_hand.value, pg_hand.threshold, pg_hand.met) == (0.8, 0.8, True)
    assert found["postgres projector / raw upsert"].value == 0.5
    assert found["postgres projector / raw upsert"].met is True
    assert found["search projector / raw bulk"].met is False  # 0.7 < 0.8
    processor = found["processor (~100 ms transactions) / before"]
    assert processor.value == round(33_000 / PROCESSOR_BEFORE_CMD_S, 3)
    assert (processor.threshold, processor.met) == (2.0, True)
    pipeline = found["pipeline sustained / slowest stage alone"]
    assert pipeline.value == round(5_600 / 7_000, 3)
    assert pipeline.met is True
    assert "search projector" in pipeline.note
    assert found["p50 to PostgreSQL at half load (ms)"].met is True  # 25 ≤ 30
    assert found["p99 to PostgreSQL at half load (ms)"].met is False  # 160 > 150
    search = found["p99 to search at half load (ms)"]
    assert (search.value, search.threshold, search.met) == (1_250.0, 1_300.0, True)


def test_the_search_target_follows_the_refresh_interval() -> None:
    search = by_name(targets(STAGES, refresh_ms=200))["p99 to search at half load (ms)"]
    assert (search.threshold, search.met) == (500.0, False)
    never = by_name(targets(STAGES, refresh_ms=None))["p99 to search at half load (ms)"]
    assert never.met is None
    assert "n/a" in never.note


def test_the_processor_target_takes_another_before_figure() -> None:
    found = by_name(targets(STAGES, processor_before=16_500.0))
    assert found["processor (~100 ms transactions) / before"].value == 2.0


def test_unmeasured_stages_leave_targets_unknown_not_failed() -> None:
    assert {target.met for target in targets({})} == {None}


def test_the_budget_table_has_every_hop_at_both_loads() -> None:
    lines = latency_lines(STAGES["latency"])
    table = [line for line in lines if line.startswith("| ") and "hop" not in line]
    assert len(table) == len(HOPS)
    assert table[0].startswith("| issue → processor commit | 12.0 | 12.0 | 40.0 | 25.0 |")
    assert "2,800 commands/s" in lines[1]
    assert "every 10 ms" in lines[1]


def test_results_md_holds_the_budget_and_the_targets() -> None:
    results = {"run": {"mode": "smoke", "started_at": "now", "partitions": 6, "batch": 500,
                       "duration_s": 1.0, "machine": {"nproc": 2, "cpu_model": "x",
                                                      "memory_gib": 1.0}},
               "stages": STAGES, "errors": {},
               "targets": [t.as_dict() for t in targets(STAGES)]}
    text = markdown(results)
    assert "| hop | light p50 |" in text
    assert "| p99 to PostgreSQL at half load (ms) | 160 | ≤ 150 | **not met** |" in text


def test_the_state_table_has_every_read_of_every_size() -> None:
    read = {"seconds": 2.0, "streams_per_s": 50_000.0, "rss_before_mib": 40.0,
            "rss_after_mib": 140.0, "hwm_mib": 150.0, "rss_bytes_per_stream": 1_049}
    state = {"100000": {name: read for name in STATE_READS},
             "1000000": {"error": "not measured"}}
    lines = state_lines(state)
    table = [line for line in lines if line.startswith("| 1")]
    assert len(table) == len(STATE_READS)
    assert "| 100,000 | **processor restore**, every partition | 2.000 | 50,000 | 40 → 140 " \
           "| 150 | 1,049 |" in table
    assert state_lines({}) == []
