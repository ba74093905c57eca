"""Raw sink baselines, the physical limits: the projectors' rows, indexes and batch size.

- PostgreSQL: the read model's `users` table (migrated, so the same indexes), the projector's
  guarded upsert, 500 rows per transaction, by two methods; the better one is the baseline.
- Elasticsearch: one `bulk` of 500 whole documents with external versions per request, into an
  index with the projector's mapping and refresh interval.

The hand-written projector (the Faust projector's store work without Faust) is `bench.handwritten`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from bench.infra import es_client
from bench.measure import Measurement, Sample, timed
from bench.workload import BATCH
from projections.config import SearchConfig
from projections.postgres.rows import PUT_USER
from projections.search.index import index_settings, load_mapping
from topics import EventEnvelope

Row = tuple[str, str, str, bool, Any, Any, int]
Clock = Callable[[], float]
MERGE = """
INSERT INTO users AS t (id, email, name, active, created_at, updated_at, version)
SELECT id, email, name, active, created_at, updated_at, version FROM users_staging
ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
    active = EXCLUDED.active, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
WHERE t.version < EXCLUDED.version"""


def user_row(envelope: EventEnvelope) -> Row:
    data = envelope.data
    return (envelope.stream_id.partition("-")[2], data["email"], data["name"], True,
            envelope.occurred_at, envelope.occurred_at, envelope.version)


def _batches(rows: Sequence[Row]) -> list[Sequence[Row]]:
    return [rows[start:start + BATCH] for start in range(0, len(rows), BATCH)]


def pg_executemany(dsn: str, rows: Sequence[Row], clock: Clock) -> Measurement:
    """`executemany` of the guarded upsert in pipeline mode, one transaction per batch."""
    series: list[Sample] = []
    with psycopg.connect(dsn) as connection:
        started = clock()
        for batch in _batches(rows):
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(PUT_USER.encode(), batch)
            series.append((clock() - started, series[-1][1] + len(batch) if series else len(batch)))
        return timed(len(rows), started, series)


def pg_copy_merge(dsn: str, rows: Sequence[Row], clock: Clock) -> Measurement:
    """COPY into a temporary staging table, then one guarded INSERT … ON CONFLICT per batch."""
    series: list[Sample] = []
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TEMP TABLE users_staging (LIKE users) ON COMMIT DELETE ROWS")
        connection.commit()
        started = clock()
        for batch in _batches(rows):
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy("COPY users_staging FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                cursor.execute(MERGE.encode())
            series.append((clock() - started, series[-1][1] + len(batch) if series else len(batch)))
        return timed(len(rows), started, series)


def pg_baseline(dsn: str, rows: Sequence[Row], clock: Clock) -> dict[str, Any]:
    """Both methods on an empty table each; `best` names the faster."""
    methods = {"executemany_pipeline": pg_executemany, "copy_merge": pg_copy_merge}
    measured: dict[str, Measurement] = {}
    for name, method in methods.items():
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("TRUNCATE users")
        measured[name] = method(dsn, rows, clock)
    best = max(measured, key=lambda name: measured[name].rate)
    return {"best": best, **measured[best].as_dict(),
            "methods": {name: round(m.rate, 1) for name, m in measured.items()}}


def es_baseline(search: SearchConfig, index: str, envelopes: Sequence[EventEnvelope],
                clock: Clock) -> Measurement:
    """Bulk-index the events' whole documents (external versions), 500 per request."""
    body = load_mapping()
    series: list[Sample] = []
    with es_client(search) as client:
        client.indices.create(index=index, settings=index_settings(search.refresh_interval),
                              mappings=body["mappings"])
        started = clock()
        done = 0
        for start in range(0, len(envelopes), BATCH):
            operations: list[dict[str, Any]] = []
            for envelope in envelopes[start:start + BATCH]:
                user_id, email, name, active, created, updated, version = user_row(envelope)
                operations.append({"index": {"_id": user_id, "version": version,
                                             "version_type": "external"}})
                operations.append({"user_id": user_id, "name": name, "email": email,
                                   "active": active, "created_at": created.isoformat(),
                                   "updated_at": updated.isoformat(), "version": version})
            response = client.bulk(index=index, operations=operations)
            if response.body.get("errors"):
                raise RuntimeError(f"bulk baseline: item errors in {index}")
            done += len(operations) // 2
            series.append((clock() - started, done))
        return timed(done, started, series)
