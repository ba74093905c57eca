"""`retry_projector` over a fake store: stream order by version, no-op once released, poison."""

from __future__ import annotations

import asyncio
from typing import Any

from projections.operations.dlq import DlqEntry, retry_projector
from projections.runtime.errors import PoisonEvent
from projections.runtime.records import Applied, Item, SourceRecord
from tests.support.events import as_records, envelope
from topics import UserCreated, UserEmailChanged, UserNameChanged, deadletter

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


class ProducingKafka(FakeKafka):
    """`FakeKafka` that also records `produce` (as `KafkaOps.produce` takes it)."""

    def __init__(self, records: dict[tuple[str, int, int], FakeMessage]) -> None:
        super().__init__(records)
        self.produced: list[tuple[str, int, bytes | None, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]]] = []

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]]) -> None:
        self.produced.append((topic, partition, key, value))
        self.headers.append(headers)


def command_letter(key: bytes, value: bytes, offset: int, *, cut: int | None,
                   pointer_header: bool = True) -> FakeMessage:
    """A commands-DLQ letter of the command at `t.commands[1]@offset`: whole (`cut=None`), its
    value cut to `cut` bytes, or (`cut=0`) a pointer with no value; `pointer_header=False`
    leaves `dlq.truncated` out (only `dlq.original.value.bytes` tells)."""
    from topics import deadletter
    letter = deadletter.dead_letter(topic="t.commands", partition=1, offset=offset, key=key,
                                    value=value, headers=(), error=ValueError("boom"))
    headers = [(n, v) for n, v in letter.headers if n != deadletter.TRUNCATED]
    if cut is None:
        return FakeMessage(letter.key, letter.value, headers, offset)
    if pointer_header:
        headers.append((deadletter.TRUNCATED, b"value"))
    return FakeMessage(letter.key, value[:cut] if cut else None, headers, offset)


def test_retry_command_never_reproduces_a_cut_copy_or_a_pointer() -> None:
    from projections.operations.dlq import entry_of, retry_command
    command = b'{"command_id": "c1", "type": "CreateUser"' + b" " * 5000 + b"}"
    source = {("t.commands", 1, 5): FakeMessage(b"user-a", command, [], 5)}
    letters = [command_letter(b"user-a", command, 5, cut=100),
               command_letter(b"user-a", command, 5, cut=0),
               command_letter(b"user-a", command, 5, cut=100, pointer_header=False),
               command_letter(b"user-a", command, 5, cut=0, pointer_header=False)]
    for letter in letters:
        entry = entry_of(letter)  # type: ignore[arg-type]
        assert "value" in entry.truncated
        kafka = ProducingKafka(source)
        outcome = retry_command(kafka, "t.dlq", "t.commands", entry)  # type: ignore[arg-type]
        assert outcome.result == "republished to t.commands[1]"
        assert kafka.produced == [("t.commands", 1, b"user-a", command)]
        changed = ProducingKafka({("t.commands", 1, 5): FakeMessage(b"user-a", b"{}", [], 5)})
        refused = retry_command(changed, "t.dlq", "t.commands", entry)  # type: ignore[arg-type]
        assert refused.failed
        assert refused.result.startswith("not retried:")
        assert "sha256 differs" in refused.result
        assert changed.produced == []


def test_retry_command_answers_not_retried_and_goes_on_with_the_list() -> None:
    from projections.operations.dlq import entry_of, retry_command
    command = b'{"command_id": "c2"}'
    gone = entry_of(command_letter(b"user-b", command * 50, 3, cut=10))  # type: ignore[arg-type]
    whole = entry_of(command_letter(b"user-b", command, 4, cut=None))  # type: ignore[arg-type]
    kafka = ProducingKafka({})
    outcomes = [retry_command(kafka, "t.dlq", "t.commands", e)  # type: ignore[arg-type]
                for e in (gone, whole)]
    assert [o.failed for o in outcomes] == [True, False]
    assert outcomes[0].result.startswith("not retried:")
    assert "no longer holds the original" in outcomes[0].result
    assert kafka.produced == [("t.commands", 1, b"user-b", command)]
    [retried] = kafka.headers  # names the letter it came from (topics' header name)
    assert dict(retried)[deadletter.RETRY_OF] == f"t.dlq:{whole.partition}:{whole.offset}".encode()


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


def test_faust_dead_letters_fall_back_when_faust_wraps_the_size_refusal() -> None:
    """faust-streaming 0.15.3's `Producer.send` re-raises aiokafka's `MessageSizeTooLargeError`
    as `ProducerSendError(...) from exc`: run that very code over a stub aiokafka producer."""
    from types import SimpleNamespace

    from aiokafka.errors import MessageSizeTooLargeError  # type: ignore[import-untyped]
    from faust.exceptions import ProducerSendError
    from faust.transport.drivers.aiokafka import Producer

    from projections.runtime.app import FaustDeadLetters, size_refusal
    from topics import deadletter

    sent: list[tuple[bytes | None, list[tuple[str, bytes]]]] = []

    class AiokafkaProducer:
        async def send(self, topic: str, value: bytes | None, **fields: Any) -> object:
            if value is not None:
                raise MessageSizeTooLargeError("The message is too large")
            sent.append((value, fields["headers"]))
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

    aiokafka = AiokafkaProducer()
    faust_producer = SimpleNamespace(
        _ensure_producer=lambda: aiokafka, _send_on_produce_message=lambda **_: None,
        allow_headers=True)

    class Topic:
        async def send(self, *, key: bytes | None, value: bytes | None,
                       headers: list[tuple[str, bytes]]) -> Any:
            return await Producer.send(faust_producer, "dlq", key, value,  # type: ignore[arg-type]
                                       None, None, headers)

    async def wrapped() -> BaseException:
        try:
            await Topic().send(key=b"k", value=b"v", headers=[])
        except ProducerSendError as error:
            return error
        raise AssertionError("faust did not raise")

    error = asyncio.run(wrapped())
    assert isinstance(error.__cause__, MessageSizeTooLargeError)
    assert size_refusal(error) is error.__cause__

    record = SourceRecord(TOPIC, 0, 7, b"k", b"v" * 100, ())
    asyncio.run(FaustDeadLetters(Topic()).send(record, ValueError("poison")))
    [(value, headers)] = sent
    assert value is None
    assert dict(headers)[deadletter.TRUNCATED] == b"key,value,headers"
    assert dict(headers)[deadletter.SOURCE_OFFSET] == b"7"
