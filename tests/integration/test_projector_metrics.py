"""`cqrs project postgres --metrics-port N` as a process: /metrics, /livez, /readyz."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.projector_harness import PARTITIONS, Setup, setup, wait_until
from tests.support.events import produce, produce_raw, user_created
from tests.support.metrics import free_port, get, sample, scrape


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str) -> Iterator[Setup]:
    with setup(kafka_config, pg_dsn, topic_prefix) as found:
        yield found


def test_metrics_count_applied_events_lag_falls_to_zero_and_a_dead_letter_shows(env: Setup,
                                                                tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    labels = {"prefix": env.prefix, "projector": "postgres"}
    produce(env.kafka_config, env.events, [user_created(f"m{n}") for n in range(10)], PARTITIONS)
    produce(env.kafka_config, env.events, [user_created(f"t{n}") for n in range(10)], PARTITIONS,
            transactional=True)  # commit markers take offsets: lag must still reach 0
    log = tmp_path / "projector.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cqrs", "project", "postgres", "--metrics-port", str(port)],
            env={**os.environ, **env.env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        def caught_up() -> bool:
            try:
                samples = scrape(base)
            except OSError:
                return False
            lags = [sample(samples, "cqrs_projector_lag", **labels, partition=str(p))
                    for p in range(PARTITIONS)]
            applied = sample(samples, "cqrs_projector_records_total", **labels,
                             outcome="applied")
            return applied == 20 and lags == [0.0] * PARTITIONS

        wait_until(caught_up, 90, "20 applied and lag 0 on every partition")
        status, body = get(f"{base}/readyz")
        assert (status, json.loads(body)["status"]) == (200, "ready")
        assert get(f"{base}/livez")[0] == 200
        samples = scrape(base)
        assert sample(samples, "cqrs_projector_up", **labels) == 1
        assert sample(samples, "cqrs_projector_batch_size_sum", **labels) == 20
        # One observation per partition per committed batch, not per event.
        ages = sample(samples, "cqrs_projector_event_age_seconds_count", **labels)
        assert ages is not None
        assert PARTITIONS <= ages <= 20
        assert sample(samples, "cqrs_projector_lag_seconds", **labels) == 0
        assert sample(samples, "cqrs_projector_rebalances_total", **labels) >= 1  # type: ignore[operator]
        assert env.query("SELECT count(*) FROM users")[0][0] == 20

        produce_raw(env.kafka_config, env.events, b"user-poison", b"{not json", 0)

        def dead_lettered() -> bool:
            samples = scrape(base)
            return (sample(samples, "cqrs_projector_records_total", **labels,
                           outcome="dead_lettered") == 1
                    and sample(samples, "cqrs_projector_dlq_depth", **labels) == 1)

        # The depth is read every 10 s (observe.DLQ_INTERVAL): a 0 read before the dead letter
        # must give way to 1.
        wait_until(dead_lettered, 60, "one record dead-lettered and the DLQ depth 1")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
