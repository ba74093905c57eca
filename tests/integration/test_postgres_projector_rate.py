"""Rate of `cqrs project postgres` on 20,000 events (slow; prints events/s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.projector_harness import PARTITIONS, running_projector, setup, wait_until
from tests.support.events import produce, stream
from topics import UserCreated, UserNameChanged

N = 20_000


@pytest.mark.slow
def test_rate(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str,
              tmp_path: Path) -> None:
    events = [e for n in range(N // 2) for e in stream(
        f"user-r{n}", [UserCreated(email=f"r{n}@x.io", name="R"),
                       UserNameChanged(name="R2")])]
    with setup(kafka_config, pg_dsn, topic_prefix) as env:
        produce(kafka_config, env.events, events, PARTITIONS)
        with running_projector(env.env, tmp_path / "p.log") as projector:
            wait_until(lambda: projector.totals()["consumed"] >= 1, 120, "first batch")
            start, first = time.monotonic(), projector.totals()["consumed"]
            wait_until(lambda: projector.totals()["consumed"] >= N, 600, "all events")
            elapsed = time.monotonic() - start
            print(f"rate: {(N - first) / elapsed:.0f} events/s ({N - first} in {elapsed:.1f}s)")
            assert projector.totals()["applied"] == N
