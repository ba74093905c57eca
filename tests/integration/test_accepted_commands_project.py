"""Property: whatever the processor accepts, both projectors apply.

Commands are drawn from the published JSON Schemas (docs/schemas), as any Kafka client would
produce them, sent with a raw producer through the real pipeline (processor, PostgreSQL and
search projectors as subprocesses), and every accepted stream must reach its version in
PostgreSQL and, for users, in Elasticsearch, with nothing dead-lettered by either projector.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pipeline import Pipeline, Tail, running_pipeline, wait_until
from tests.support.schemas import from_schema, property_of
from tests.support.services import Endpoints
from topics import COMMANDS, partition_for

SEEN = {"accepted": 0, "rejected": 0}
"""Outcomes over the whole property run: a run that accepted nothing would prove nothing."""


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(endpoints, tmp_path_factory.mktemp("property"), kind="prop") as running:
        yield running


@pytest.fixture(scope="module")
def tail(pipeline: Pipeline) -> Iterator[Tail]:
    catalogue = pipeline.catalogue
    watched = [catalogue.command_results.name, catalogue.projection_dlq("postgres").name,
               catalogue.projection_dlq("search").name, catalogue.commands_dlq.name]
    reader = Tail(pipeline.kafka_config, watched)
    yield reader
    reader.close()


@st.composite
def command(draw: st.DrawFn, type_name: str, users: list[str], orders: list[str]
            ) -> dict[str, Any]:
    """One command envelope of `type_name`: data from its schema, the id often from the example's
    pool, so that updates, payments and orders meet streams that exist."""
    data = draw(from_schema(type_name))
    pool = users if COMMANDS[type_name].aggregate_type == "user" else orders
    aggregate_id = draw(st.one_of(st.sampled_from(pool),
                                  property_of("CommandEnvelope", "aggregate_id")))
    if "customer_id" in data:
        data["customer_id"] = draw(st.one_of(st.just(data["customer_id"]), st.sampled_from(users)))
    expected = st.one_of(st.none(), st.integers(0, 3)) if draw(st.booleans()) else st.none()
    return {"command_id": uuid.uuid4().hex, "type": type_name, "aggregate_id": aggregate_id,
            "data": data, "issued_at": draw(property_of("CommandEnvelope", "issued_at")),
            "expected_version": draw(expected),
            "correlation_id": draw(property_of("CommandEnvelope", "correlation_id"))}


@st.composite
def commands(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A fresh pool of users (created first, data drawn too) and orders, then any commands."""
    users = [f"p{uuid.uuid4().hex[:12]}" for _ in range(3)]
    orders = [f"o{uuid.uuid4().hex[:12]}" for _ in range(3)]
    creates = [draw(command("CreateUser", [user], orders)) for user in users]
    types = st.sampled_from(sorted(COMMANDS))
    rest = draw(st.lists(types.flatmap(lambda name: command(name, users, orders)),
                         min_size=1, max_size=25))
    return [*creates, *rest]


def _send(pipeline: Pipeline, documents: list[dict[str, Any]]) -> None:
    producer = Producer({**pipeline.kafka_config, "enable.idempotence": True})
    topic, partitions = pipeline.catalogue.commands.name, pipeline.catalogue.partitions
    for document in documents:
        aggregate = COMMANDS[document["type"]].aggregate_type
        stream_id = f"{aggregate}-{document['aggregate_id']}"
        producer.produce(topic, json.dumps(document).encode(), stream_id.encode(),
                         partition=partition_for(stream_id, partitions))
    assert producer.flush(30) == 0


def _answers(tail: Tail, topic: str) -> dict[str, dict[str, Any]]:
    return {result["command_id"]: result
            for result in (record.json() for record in tail.records[topic])}


def _user_versions(pipeline: Pipeline) -> dict[str, tuple[int, str, str, bool]]:
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in
            pipeline.rows("SELECT id, version, email, name, active FROM users")}


def _forgotten(pipeline: Pipeline) -> dict[str, int]:
    """Forgotten users (an accepted `ForgetUser`): no row, no document, a marker's version."""
    return {row[0]: row[1] for row in pipeline.rows("SELECT id, version FROM forgotten_users")}


def _order_versions(pipeline: Pipeline) -> dict[str, int]:
    return {row[0]: row[1] for row in pipeline.rows("SELECT id, version FROM orders")}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents=commands())
def test_what_the_processor_accepts_both_projectors_apply(
    pipeline: Pipeline, tail: Tail, documents: list[dict[str, Any]]
) -> None:
    results_topic = pipeline.catalogue.command_results.name
    dlqs = [pipeline.catalogue.projection_dlq(name).name for name in ("postgres", "search")]
    tail.poll(0.1)
    dead_before = {topic: len(tail.records[topic]) for topic in dlqs}
    _send(pipeline, documents)
    wanted = {document["command_id"] for document in documents}
    wait_until(lambda: tail.poll(0.3) >= 0 and wanted <= _answers(tail, results_topic).keys(),
               60, "a result for every command", pipeline)
    answers = _answers(tail, results_topic)
    accepted: dict[str, int] = {}
    for command_id in wanted:
        answer = answers[command_id]
        SEEN["accepted" if answer["status"] == "accepted" else "rejected"] += 1
        if answer["status"] == "accepted":
            accepted[answer["stream_id"]] = max(accepted.get(answer["stream_id"], 0),
                                                answer["version"])
    users = {stream.removeprefix("user-"): v for stream, v in accepted.items()
             if stream.startswith("user-")}
    orders = {stream.removeprefix("order-"): v for stream, v in accepted.items()
              if stream.startswith("order-")}

    def projected() -> bool:
        rows, order_rows, documents_ = (_user_versions(pipeline), _order_versions(pipeline),
                                        pipeline.documents())
        forgotten = _forgotten(pipeline)
        kept = {u: v for u, v in users.items() if forgotten.get(u, 0) < v}
        return (all(rows.get(u, (0,))[0] >= v for u, v in kept.items())
                and all(order_rows.get(o, 0) >= v for o, v in orders.items())
                and all(documents_.get(u, {}).get("version", 0) >= v for u, v in kept.items())
                and not (forgotten.keys() & (rows.keys() | documents_.keys())))

    wait_until(projected, 60, f"accepted streams projected: {accepted}", pipeline)
    tail.poll(0.5)
    for topic in dlqs:
        dead = tail.records[topic][dead_before[topic]:]
        assert not dead, [(record.headers, record.value) for record in dead]
    rows, documents_ = _user_versions(pipeline), pipeline.documents()
    for user_id in users.keys() - _forgotten(pipeline).keys():
        version, email, name, active = rows[user_id]
        document = documents_[user_id]
        assert (document["version"], document["email"], document["name"],
                document["active"]) == (version, email, name, active)


def test_workers_survive_the_property_run(pipeline: Pipeline) -> None:
    """No drawn command stopped a worker, and the property run saw both outcomes."""
    assert not pipeline.exited(), pipeline.log_tail()
    assert SEEN["accepted"] >= 10, SEEN
    assert SEEN["rejected"] >= 10, SEEN
