"""Erasure on the real pipeline: a forgotten user leaves PostgreSQL, Elasticsearch and, once Kafka
has compacted, the raw event and snapshot logs; no rebuild brings it back.

The topics get fast compaction for this test (closed segments after a second, no compaction
lag, any dirty ratio), so the log cleaner runs within the test; the check then reads the events
and aggregates topics from the beginning with a raw consumer, every byte of every record.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from pipeline.client import CommandClient, new_command
from tests.support.pipeline import ROOT, Pipeline, running_pipeline, wait_until
from tests.support.services import Endpoints
from topics import CommandResult

FAST_COMPACTION = {"segment.ms": "1000", "min.compaction.lag.ms": "0",
                   "max.compaction.lag.ms": "2000", "min.cleanable.dirty.ratio": "0.01",
                   "delete.retention.ms": "600000"}
"""Tombstones stay readable (delete.retention.ms) so the check can see them; the records they
erase go at the first cleaning."""


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(endpoints, tmp_path_factory.mktemp("erasure"), partitions=2,
                          kind="erase") as running:
        catalogue = running.catalogue
        admin = AdminClient(running.kafka_config)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in FAST_COMPACTION.items()])
            for name in (catalogue.events.name, catalogue.aggregates.name)]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout=30)
        yield running


def _send(client: CommandClient, *commands: Any) -> list[CommandResult]:
    return client.send_many_and_wait(list(commands), timeout=60)


def _raw_log(pipeline: Pipeline, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of `topic` from its first offset (read_uncommitted: aborted ones too)."""
    consumer = Consumer({**pipeline.kafka_config, "group.id": f"raw-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_uncommitted"})
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: list[tuple[bytes | None, bytes | None]] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 30
    while len(ended) < len(partitions) and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                ended.add(message.partition())
                continue
            headers = b"".join(name.encode() + (value or b"")
                               for name, value in message.headers() or [])
            found.append((message.key(), (message.value() or b"") + headers
                          if message.value() is not None else None))
    consumer.close()
    assert len(ended) == len(partitions), f"{topic}: not read to its end"
    return found


def _rebuild(pipeline: Pipeline, projection: str, *options: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cqrs", "rebuild", projection,
                           *(options or ("--no-keep",))],
                          cwd=ROOT, env={**os.environ, **pipeline.env}, capture_output=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_a_forgotten_user_leaves_every_model_and_the_compacted_logs(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:8]
    subject, other = f"zelda{run}", f"link{run}"
    pii = [f"zelda.{run}@example.com".encode(), f"Zelda {run}".encode(),
           f"Zelda Hyrule {run}".encode(), f"zelda.new.{run}@example.com".encode()]
    with CommandClient(pipeline.kafka_config, pipeline.catalogue) as client:
        results = _send(
            client,
            new_command("CreateUser", subject, {"email": pii[0].decode(),
                                                "name": pii[1].decode()}),
            new_command("CreateUser", other, {"email": f"link.{run}@example.com",
                                              "name": f"Link {run}"}))
        results += _send(
            client,
            new_command("UpdateUser", subject, {"name": pii[2].decode(),
                                                "email": pii[3].decode()}),
            new_command("CreateOrder", f"paid{run}", {
                "customer_id": subject, "currency": "EUR",
                "items": [{"sku": "sword", "quantity": 1, "unit_price": 4200}]}))
        results += _send(client, new_command("PayOrder", f"paid{run}", {"payment_ref": "pay-1"}))
        assert [r.status for r in results] == ["accepted"] * 5, results

        wait_until(lambda: bool(pipeline.rows("SELECT 1 FROM users WHERE id = %s AND version = 3",
                                              (subject,)))
                   and pipeline.documents().get(subject, {}).get("version") == 3,
                   60, "the subject projected", pipeline)
        before_forget = datetime.now(UTC).isoformat()
        forget = new_command("ForgetUser", subject, {"reason": "GDPR art. 17 request",
                                                     "requested_by": "privacy-desk"})
        (forgotten,) = _send(client, forget)
        assert (forgotten.status, forgotten.version) == ("accepted", 4), forgotten

        def erased() -> bool:
            return (not pipeline.rows("SELECT 1 FROM users WHERE id = %s", (subject,))
                    and subject not in pipeline.documents()
                    and pipeline.rows("SELECT customer_id FROM orders WHERE id = %s",
                                      (f"paid{run}",)) == [(None,)])

        wait_until(erased, 60, "the subject gone from PostgreSQL and Elasticsearch", pipeline)
        assert pipeline.rows("SELECT count(*) FROM users") == [(1,)]
        assert pipeline.rows("SELECT total, status, payment_ref FROM orders WHERE id = %s",
                             (f"paid{run}",)) == [(4200, "paid", "pay-1")]

        # A point-in-time build up to just before the forget, into a side model for audits:
        # it reads the live model's forget markers first, so it never holds the subject.
        _rebuild(pipeline, "postgres", "--until", before_forget)
        (pit,) = pipeline.rows("SELECT nspname FROM pg_namespace WHERE starts_with(nspname,"
                               " current_schema() || '__pit_')")
        assert pipeline.rows(f'SELECT id FROM "{pit[0]}".users ORDER BY id') == [(other,)]
        _rebuild(pipeline, "postgres", "--drop", pit[0])

        # Before compaction the log still holds the subject's events: a rebuild from the
        # beginning reads them, and still swaps in models without the subject.
        _rebuild(pipeline, "postgres")
        _rebuild(pipeline, "search")
        assert not pipeline.rows("SELECT 1 FROM users WHERE id = %s", (subject,))
        assert subject not in pipeline.documents()
        assert pipeline.rows("SELECT count(*) FROM users") == [(1,)]

        # The id is never usable again, the forget's retry is a duplicate.
        again = _send(client,
                      new_command("CreateUser", subject, {"email": f"z2.{run}@example.com",
                                                          "name": "Zelda Again"}),
                      forget.model_copy())
        assert [(r.status, r.code) for r in again] == [
            ("rejected", "user.forgotten"), ("duplicate", None)], again

        # Compaction: records keep arriving (other users) so the segments roll and get cleaned.
        catalogue = pipeline.catalogue

        def compacted() -> bool:
            _send(client, new_command("CreateUser", f"filler{uuid.uuid4().hex[:8]}",
                                      {"email": f"f{uuid.uuid4().hex[:8]}@example.com",
                                       "name": "Filler"}))
            logs = _raw_log(pipeline, catalogue.events.name) + _raw_log(
                pipeline, catalogue.aggregates.name)
            return not any(secret in (key or b"") + (value or b"")
                           for key, value in logs for secret in pii)

        wait_until(compacted, 120, "the subject's personal data compacted out of the logs",
                   pipeline)

    events = _raw_log(pipeline, catalogue.events.name)
    keys = {key: value for key, value in events if key and key.startswith(
        f"user-{subject}@".encode())}
    # What is left of the stream: its tombstones (null values) and the forget itself.
    assert {key for key, value in keys.items() if value is None} == {
        f"user-{subject}@{v}".encode() for v in (1, 2, 3)}
    assert [key for key, value in keys.items() if value is not None] == [
        f"user-{subject}@4".encode()]
    assert b"UserForgotten" in (keys[f"user-{subject}@4".encode()] or b"")

    # After compaction a rebuild reads only the forget: still nothing of the subject.
    _rebuild(pipeline, "postgres")
    assert not pipeline.rows("SELECT 1 FROM users WHERE id = %s", (subject,))
    assert pipeline.rows("SELECT id FROM forgotten_users") == [(subject,)]
    # The tombstones were skipped by both projectors, nothing was dead-lettered anywhere.
    for dlq in (catalogue.commands_dlq, catalogue.projection_dlq("postgres"),
                catalogue.projection_dlq("search")):
        assert _raw_log(pipeline, dlq.name) == [], dlq.name
    assert not pipeline.exited(), pipeline.log_tail()
