"""`cqrs bench --smoke`: every stage runs on the real services, reports, plots and cleans up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient

from bench.latency import HOPS
from bench.report import STAGES
from tests.support.services import Endpoints

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_every_stage_and_cleans_up(endpoints: Endpoints,
                                                      tmp_path: Path) -> None:
    env = {**os.environ, "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
           "CQRS_PG_DSN": endpoints.pg_dsn, "CQRS_ES_URL": endpoints.es_url}
    out = tmp_path / "bench"
    finished = subprocess.run(
        [sys.executable, "-m", "cqrs", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {}
    assert set(STAGES) <= set(results["stages"])
    for stage in ("kafka", "pipeline", "handwritten_projector"):
        assert results["stages"][stage]["rate"] > 0, stage
    for interval in ("10ms", "100ms", "1000ms"):
        assert results["stages"]["processor"][interval]["rate"] > 0, interval
    for sink in ("postgres_sink", "search_sink"):
        assert results["stages"][sink]["baseline"]["rate"] > 0, sink
        assert results["stages"][sink]["projector"]["rate"] > 0, sink
    hand = results["stages"]["handwritten_projector"]
    assert hand["counters"]["consumed"] == results["stages"]["postgres_sink"]["events"]
    assert hand["counters"]["dead_lettered"] == 0
    for run in ("light", "half_load"):
        latency = results["stages"]["latency"][run]
        assert latency["followed"] > 0, run
        for hop in HOPS:  # every followed command stamped at every stage
            assert latency["hops"][hop]["missing"] == 0, (run, hop)
            assert latency["hops"][hop]["count"] == latency["followed"], (run, hop)
        assert latency["postgres"]["missing"] == latency["search"]["missing"] == 0, run
    streams = results["run"]["sizes"]["state_streams"][0]
    state = results["stages"]["state"][str(streams)]
    for read in ("raw", "decode", "restore", "replica"):  # each read every snapshot back
        assert state[read]["streams"] == streams, read
        assert state[read]["rss_after_mib"] > 0, read
    assert 0 < state["restore_one"]["streams"] < streams
    assert set(results["stages"]["memory"]) == {
        "processor", "projector.postgres", "projector.search"}
    assert len(results["targets"]) == 8
    report = (out / "results.md").read_text()
    assert "| target |" in report
    assert "| hop | light p50 |" in report
    for plot in ("throughput.png", "latency.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot

    run_prefix = f"bench-{results['run']['run_id']}-"
    admin = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap})
    left = [t for t in admin.list_topics(timeout=10).topics if t.startswith(run_prefix)]
    assert left == []
    with psycopg.connect(endpoints.pg_dsn) as connection:
        databases = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"bench_{results['run']['run_id']}_%",)).fetchall()
    assert databases == []
