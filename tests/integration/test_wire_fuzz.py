"""Wire fuzz: thousands of hostile records from a raw producer, through the real pipeline.

Kinds (`tests.support.fuzz`): random bytes, random JSON, commands drawn from the published
schemas, extremes at and past every limit, mutated real commands, honest commands (some on a
wrong partition, some sent twice), and foreign records on the events topic. Afterwards:

- every worker (processor, both projectors) is still running and a fresh command is answered;
- every command record is accounted for exactly once: a readable command id gets exactly one
  result per record that carried it (forwarded records are answered once, after forwarding),
  anything else exactly one dead letter naming its source position;
- every accepted event is on the events topic exactly once and neither projector dead-letters
  it, and each projector accounts for every record of the events topic (applied, skipped,
  parked or dead-lettered);
- the two read models agree on every stream they both hold.

Seeded (`CQRS_FUZZ_SEED`, printed on failure) so a failing run can be replayed.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from tests.support.fuzz import Commands, ForeignEvents, Sent, envelope
from tests.support.pipeline import Pipeline, Record, Tail, running_pipeline, wait_until
from tests.support.services import Endpoints
from topics import partition_for, peek_command_id

SEED = int(os.environ.get("CQRS_FUZZ_SEED", "20261202"))
PARTITIONS = 3


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(endpoints, tmp_path_factory.mktemp("fuzz"), PARTITIONS,
                          kind="fuzz") as running:
        yield running


def _produce(pipeline: Pipeline, records: list[Sent]) -> list[tuple[Sent, int]]:
    """Produce in order; returns each record with the offset it landed at."""
    producer = Producer({**pipeline.kafka_config, "message.max.bytes": 2_000_000,
                         "linger.ms": 10})
    landed: list[tuple[Sent, int]] = []

    def delivered(error: object, message: object, sent: Sent) -> None:
        assert error is None, (sent.kind, error)
        landed.append((sent, message.offset()))  # type: ignore[attr-defined]

    for sent in records:
        while True:
            try:
                producer.produce(sent.topic, sent.value, sent.key, partition=sent.partition,
                                 headers=list(sent.headers),
                                 on_delivery=lambda e, m, s=sent: delivered(e, m, s))
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return landed


def _source(record: Record) -> tuple[str, int, int] | None:
    headers = record.headers
    topic = headers.get("dlq.source.topic", headers.get("source_topic"))
    partition = headers.get("dlq.source.partition", headers.get("source_partition"))
    offset = headers.get("dlq.source.offset", headers.get("source_offset"))
    if topic is None or partition is None or offset is None:
        return None
    return topic, int(partition), int(offset)


def _results(tail: Tail, topic: str) -> Counter[str]:
    return Counter(record.json()["command_id"] for record in tail.records[topic])


def test_hostile_records_stop_nothing_and_every_record_is_accounted_for(
    pipeline: Pipeline,
) -> None:
    catalogue = pipeline.catalogue
    commands = Commands(catalogue.commands.name, PARTITIONS, SEED)
    sent = [*commands.valid(900), *commands.random_bytes(500), *commands.random_json(400),
            *commands.schema_drawn(400), *commands.extremes(), *commands.mutated(600)]
    foreign = list(ForeignEvents(catalogue.events.name, PARTITIONS, SEED).all(25))
    started = time.monotonic()
    landed = _produce(pipeline, sent + foreign)
    kinds = Counter(record.kind.split(":")[0] for record in sent + foreign)
    context = f"seed {SEED}, sent {dict(kinds)}"

    on_commands = [(s, offset) for s, offset in landed if s.topic == catalogue.commands.name]
    readable = Counter(i for s, _ in on_commands if (i := peek_command_id(s.value or b"")))
    unreadable = {(s.topic, s.partition, offset) for s, offset in on_commands
                  if not peek_command_id(s.value or b"")}
    tail = Tail(pipeline.kafka_config, [catalogue.command_results.name, catalogue.commands_dlq.name,
                                        catalogue.events.name, *(catalogue.projection_dlq(n).name
                                                                 for n in ("postgres", "search"))])

    def answered() -> bool:
        tail.poll(0.5)
        dead = {_source(r) for r in tail.records[catalogue.commands_dlq.name]}
        return readable.keys() <= _results(tail, catalogue.command_results.name).keys() \
            and unreadable <= dead

    wait_until(answered, 180, f"every command answered or dead-lettered ({context})", pipeline)
    time.sleep(2)
    tail.poll(1)
    results = _results(tail, catalogue.command_results.name)
    assert results == readable, f"results per command id differ from records sent ({context})"
    dead_sources = Counter(_source(r) for r in tail.records[catalogue.commands_dlq.name])
    assert all(count == 1 for count in dead_sources.values()), dead_sources.most_common(3)
    assert unreadable <= dead_sources.keys(), context

    accepted_ids = [event_id for record in tail.records[catalogue.command_results.name]
                    if (answer := record.json())["status"] == "accepted"
                    for event_id in answer["event_ids"]]
    events = [r for r in tail.records[catalogue.events.name] if r.value is not None]
    keys = Counter((r.key or b"").decode("utf-8", "replace") for r in events)
    assert all(keys[event_id] == 1 for event_id in accepted_ids), context
    # The processor's tombstones (beside the foreign records the fuzz writes to the events
    # topic) erase only events of streams an accepted forget ended (docs/erasure.md).
    erased = {(r.key or b"").decode("utf-8", "replace")
              for r in tail.records[catalogue.events.name] if r.value is None}
    types = _types(events)
    forgotten = {event_id.rpartition("@")[0] for event_id in accepted_ids
                 if types.get(event_id) == "UserForgotten"}
    assert {key.rpartition("@")[0] for key in erased & set(accepted_ids)} <= forgotten, context
    assert len(accepted_ids) > 500, f"too few commands accepted to prove much ({context})"

    _fresh_command_is_answered(pipeline, tail)
    _projectors_account_for_every_event(pipeline, tail, set(accepted_ids))
    _read_models_agree(pipeline)
    print(_summary(pipeline, tail, landed))  # the counts per kind and outcome, shown with -s
    assert not pipeline.exited(), pipeline.log_tail()
    assert time.monotonic() - started < 300, "the fuzz run is bounded to a few minutes"


def _types(events: list[Record]) -> dict[str, str]:
    """Key -> event type of the records that decode as events (the fuzz writes others too)."""
    found = {}
    for record in events:
        try:
            key = (record.key or b"").decode("utf-8")
            found[key] = str(json.loads(record.value or b"")["type"])
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _summary(pipeline: Pipeline, tail: Tail, landed: list[tuple[Sent, int]]) -> str:
    """Records per kind and what became of them (a result's status, or dead-lettered)."""
    catalogue = pipeline.catalogue
    status = {r.json()["command_id"]: r.json()["status"]
              for r in tail.records[catalogue.command_results.name]}
    dead = {_source(r) for r in tail.records[catalogue.commands_dlq.name]}
    table: dict[str, Counter[str]] = {}
    for sent, offset in landed:
        if sent.topic != catalogue.commands.name:
            continue
        outcome = "dead-lettered" if (sent.topic, sent.partition, offset) in dead else \
            status.get(peek_command_id(sent.value or b"") or "", "?")
        table.setdefault(sent.kind.split(":")[0], Counter())[outcome] += 1
    lines = [f"{kind}: {dict(outcomes)}" for kind, outcomes in sorted(table.items())]
    foreign = Counter(s.kind for s, _ in landed if s.topic == catalogue.events.name)
    lines.append(f"foreign events sent: {sum(foreign.values())} ({len(foreign)} kinds)")
    lines += [f"{name} projector: {pipeline.totals(name)}" for name in ("postgres", "search")]
    return "\n".join(lines)


def _fresh_command_is_answered(pipeline: Pipeline, tail: Tail) -> None:
    document = envelope("CreateUser", "after-fuzz", {"email": "after@example.com",
                                                     "name": "After Fuzz"})
    stream_id = "user-after-fuzz"
    producer = Producer(pipeline.kafka_config)
    producer.produce(pipeline.catalogue.commands.name, json.dumps(document),
                     stream_id, partition=partition_for(stream_id, PARTITIONS))
    assert producer.flush(30) == 0
    results = pipeline.catalogue.command_results.name

    def answered() -> bool:
        tail.poll(0.3)
        return document["command_id"] in _results(tail, results)

    wait_until(answered, 30, "an answer to a fresh command after the fuzz", pipeline)
    answer = next(r.json() for r in tail.records[results]
                  if r.json()["command_id"] == document["command_id"])
    assert answer["status"] == "accepted", answer


def _projectors_account_for_every_event(pipeline: Pipeline, tail: Tail,
                                        accepted: set[str]) -> None:
    events = len(tail.records[pipeline.catalogue.events.name])
    for name in ("postgres", "search"):
        wait_until(lambda name=name: pipeline.totals(name)["consumed"] >= events, 120,
                   f"{name} projector consumed all {events} events", pipeline)
        totals = pipeline.totals(name)
        assert totals["consumed"] == totals["applied"] + totals["skipped"] + totals["parked"] \
            + totals["dead_lettered"], (name, totals)
        tail.poll(0.5)
        dead = {(r.key or b"").decode("utf-8", "replace")
                for r in tail.records[pipeline.catalogue.projection_dlq(name).name]}
        assert not dead & accepted, (name, sorted(dead & accepted)[:5])


def _read_models_agree(pipeline: Pipeline) -> None:
    rows = {row[0]: row[1:] for row in pipeline.rows(
        "SELECT id, version, email, name, active FROM users")}

    def caught_up() -> bool:
        documents = pipeline.documents()
        return all(documents[user][k] == v for user in rows.keys() & documents.keys()
                   for k, v in zip(("version", "email", "name", "active"), rows[user],
                                   strict=True))

    wait_until(caught_up, 30, "PostgreSQL and search agree on every user both hold", pipeline)
    assert len(rows) > 50, f"too few users projected ({len(rows)})"


def test_the_same_seed_makes_the_same_records() -> None:
    """A failing seed can be replayed: generation depends on the seed alone."""
    def kinds_and_values(seed: int) -> list[tuple[str, bytes | None]]:
        commands = Commands("t", PARTITIONS, seed)
        made = [*commands.random_bytes(20), *commands.mutated(20)]
        return [(s.kind, s.value if s.kind == "random-bytes" else None) for s in made]

    assert kinds_and_values(SEED) == kinds_and_values(SEED)
    assert kinds_and_values(SEED) != kinds_and_values(SEED + 1)
