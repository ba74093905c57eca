"""`retry_projector` over a fake store: stream order by version, no-op once released, poison."""

from __future__ import annotations

import asyncio

from projections.operations.dlq import DlqEntry, retry_projector
from projections.runtime.errors import PoisonEvent
from projections.runtime.records import Applied, Item, SourceRecord
from tests.support.events import as_records, envelope
from topics import UserCreated, UserEmailChanged, UserNameChanged

TOPIC = "t.events"


class FakeOperableStore:
    """The operations side of a store, in memory; `refuse` makes `release` raise poison."""

    def __init__(self, blocked: dict[str, tuple[str, int, int]],
                 parked: list[SourceRecord], refuse: bool = False) -> None:
        self._blocked = dict(blocked)
        self._parked = list(parked)
        self._refuse = refuse
        self.released: list[list[int]] = []

    async def blocked(self) -> dict[str, tuple[str, int, int]]:
        return dict(self._blocked)

    async def parked_records(self, stream_id: str | None = None) -> list[SourceRecord]:
        return list(self._parked)

    async def release(self, stream_id: str, items: list[Item]) -> Applied:
        if self._refuse:
            raise PoisonEvent(0, ValueError("still impossible"))
        self.released.append([item.envelope.version for item in items])
        del self._blocked[stream_id]
        self._parked.clear()
        return Applied(len(items), 0)


def records() -> list[SourceRecord]:
    """user-a: version 2 (dead-lettered), 3 (parked), then the missing 1 (parked)."""
    return as_records([envelope("user-a", 2, UserNameChanged(name="Two")),
                       envelope("user-a", 3, UserEmailChanged(email="a3@x.io")),
                       envelope("user-a", 1, UserCreated(email="a@x.io", name="A"))],
                      topic=TOPIC)


def dead_letter(record: SourceRecord) -> DlqEntry:
    return DlqEntry(0, 0, record.key, record.value, record.headers,
                    (record.topic, record.partition, record.offset), "user-a")


def test_retry_applies_the_stream_in_version_order_then_is_a_no_op() -> None:
    poison, *parked = records()
    store = FakeOperableStore({"user-a": (TOPIC, poison.partition, poison.offset)}, parked)
    entry = dead_letter(poison)
    first = asyncio.run(retry_projector(store, entry))
    assert first.result == "released user-a: 3 event(s) re-applied"
    assert store.released == [[1, 2, 3]]
    second = asyncio.run(retry_projector(store, entry))
    assert "nothing to do" in second.result
    assert store.released == [[1, 2, 3]]


def test_an_unfixed_cause_is_still_poison_and_changes_nothing() -> None:
    poison, *parked = records()
    blocked = {"user-a": (TOPIC, poison.partition, poison.offset)}
    store = FakeOperableStore(blocked, parked, refuse=True)
    outcome = asyncio.run(retry_projector(store, dead_letter(poison)))
    assert outcome.result.startswith("still poison")
    assert asyncio.run(store.blocked()) == blocked
    garbage = SourceRecord(TOPIC, poison.partition, poison.offset, poison.key, b"{oops")
    outcome = asyncio.run(retry_projector(FakeOperableStore(blocked, []), dead_letter(garbage)))
    assert outcome.result.startswith("still poison")


def test_a_dead_letter_that_no_longer_blocks_its_stream_is_left_alone() -> None:
    poison, *_ = records()
    store = FakeOperableStore({"user-a": (TOPIC, 0, 999)}, [])
    outcome = asyncio.run(retry_projector(store, dead_letter(poison)))
    assert "nothing to do" in outcome.result
    assert store.released == []


class FakeMessage:
    """What confluent-kafka's `Message` answers, for `entry_of`."""

    def __init__(self, key: bytes | None, value: bytes | None,
                 headers: list[tuple[str, bytes]], offset: int = 0) -> None:
        self._key, self._value, self._headers, self._offset = key, value, headers, offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class FakeKafka:
    """`KafkaOps.read` and `partitions` over records held in memory."""

    def __init__(self, records: dict[tuple[str, int, int], FakeMessage]) -> None:
        self.records = records

    def read(self, topic: str, partition: int, start: int | None = None,
             limit: int | None = None) -> list[FakeMessage]:
        found = self.records.get((topic, partition, start or 0))
        return [found] if found is not None else []

    def partitions(self, topic: str) -> list[int]:
        return [0, 1, 2]


def letter_of(record: SourceRecord, value_limit: int | None = None) -> FakeMessage:
    from topics import deadletter
    value = record.value
    letter = deadletter.dead_letter(topic=record.topic, partition=record.partition,
                                    offset=record.offset, key=record.key, value=value,
                                    headers=record.headers, error=ValueError("boom"))
    if value_limit is not None:  # as if the copy had been cut
        letter = deadletter.DeadLetter(letter.key, (value or b"")[:value_limit],
                                       [*letter.headers, (deadletter.TRUNCATED, b"value")])
    return FakeMessage(letter.key, letter.value, letter.headers)


def test_entries_read_current_and_legacy_header_names() -> None:
    from projections.operations.dlq import entry_of
    poison, *_ = records()
    current = entry_of(letter_of(poison))  # type: ignore[arg-type]
    assert current.source == (TOPIC, poison.partition, poison.offset)
    assert current.error == "ValueError: boom"
    assert current.stream_id == "user-a"
    assert current.original() == poison
    legacy = entry_of(FakeMessage(poison.key, poison.value, [  # type: ignore[arg-type]
        *poison.headers, ("source_topic", TOPIC.encode()),
        ("source_partition", str(poison.partition).encode()),
        ("source_offset", str(poison.offset).encode()), ("error_class", b"NotJson"),
        ("error_message", b"bad")]))
    assert legacy.source == (TOPIC, poison.partition, poison.offset)
    assert legacy.error == "NotJson: bad"
    assert legacy.original() == poison


def test_a_truncated_copy_is_retried_from_its_source_or_refused_when_gone() -> None:
    from projections.operations.dlq import entry_of
    poison, *parked = records()
    entry = entry_of(letter_of(poison, value_limit=10))  # type: ignore[arg-type]
    assert entry.truncated == ("value",)
    blocked = {"user-a": (TOPIC, poison.partition, poison.offset)}
    gone = asyncio.run(retry_projector(FakeOperableStore(blocked, parked), entry,
                                       FakeKafka({})))  # type: ignore[arg-type]
    assert gone.failed
    assert "no longer holds the original" in gone.result
    no_kafka = asyncio.run(retry_projector(FakeOperableStore(blocked, parked), entry))
    assert no_kafka.failed
    source = FakeKafka({(TOPIC, poison.partition, poison.offset): FakeMessage(
        poison.key, poison.value, list(poison.headers), poison.offset)})
    store = FakeOperableStore(blocked, parked)
    done = asyncio.run(retry_projector(store, entry, source))  # type: ignore[arg-type]
    assert done.result == "released user-a: 3 event(s) re-applied"
    assert store.released == [[1, 2, 3]]
    other = FakeKafka({(TOPIC, poison.partition, poison.offset): FakeMessage(
        poison.key, b"{}", [], poison.offset)})
    changed = asyncio.run(retry_projector(FakeOperableStore(blocked, parked), entry,
                                          other))  # type: ignore[arg-type]
    assert "sha256 differs" in changed.result


def test_faust_dead_letters_send_a_bounded_copy_of_a_topic_max_size_record() -> None:
    from projections.runtime.app import PRODUCER_MAX_REQUEST, FaustDeadLetters
    from topics import deadletter

    class Topic:
        sent: list[dict[str, object]] = []

        async def send(self, **fields: object) -> object:
            self.sent.append(fields)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

    topic = Topic()
    value = b"v" * (deadletter.RECORD_LIMIT - 100)
    record = SourceRecord(TOPIC, 0, 7, b"k" * 5000, value, (("h", b"x" * 40_000),))
    asyncio.run(FaustDeadLetters(topic).send(record, ValueError("too big")))
    [sent] = topic.sent
    headers = dict(sent["headers"])  # type: ignore[call-overload]
    size = len(sent["value"]) + len(sent["key"]) + sum(  # type: ignore[arg-type]
        len(n) + len(v) for n, v in headers.items())
    assert size <= deadletter.DEAD_LETTER_RECORD_LIMIT < PRODUCER_MAX_REQUEST
    assert headers[deadletter.TRUNCATED] == b"value,key,headers"
    assert headers[deadletter.ORIGINAL_VALUE_BYTES] == str(len(value)).encode()
    assert headers[deadletter.SOURCE_OFFSET] == b"7"
