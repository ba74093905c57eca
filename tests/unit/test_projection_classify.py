"""The one classification every projector shares: each record class → Item, Skip or Poison."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.postgres.fake import FakeStore
from projections.runtime import BatchProcessor, Poison, Skip, SourceRecord, classify, stream_of
from projections.runtime.records import Applied, Batch, Item
from tests.support.events import as_records, envelope, user_created
from tests.unit.test_projection_processor import ListDeadLetters, _no_sleep
from topics import UserCreated, UserNameChanged, encode, event_key, partition_for

PARTITIONS = 3


def good(user_id: str = "u1") -> SourceRecord:
    [record] = as_records([user_created(user_id)], partitions=PARTITIONS)
    return record


def with_value(record: SourceRecord, value: bytes | None, **changes: Any) -> SourceRecord:
    return replace(record, value=value, **changes)


def foreign(stream_id: str, **fields: Any) -> bytes:
    document = json.loads(encode(user_created("u1")))
    document.update(stream_id=stream_id, **fields)
    return json.dumps(document, ensure_ascii=False).encode()


def error_class(record: SourceRecord, partitions: int | None = PARTITIONS) -> str:
    found = classify(record, partitions)
    assert isinstance(found, Poison), found
    return type(found.error).__name__


def test_a_valid_event_is_an_item() -> None:
    found = classify(good(), PARTITIONS)
    assert isinstance(found, Item)
    assert found.stream_id == "user-u1"


def test_a_tombstone_is_skipped_whatever_its_key() -> None:
    assert classify(with_value(good(), None), PARTITIONS) == Skip("tombstone")
    assert classify(SourceRecord("t", 0, 0, b"\xff", None), PARTITIONS) == Skip("tombstone")


def test_undecodable_values_are_poison_of_the_stream_their_key_names() -> None:
    record = with_value(good(), b"{oops")
    assert error_class(record) == "NotJson"
    found = classify(record, PARTITIONS)
    assert isinstance(found, Poison)
    assert found.stream_id == "user-u1"
    assert error_class(with_value(good(), b'"hello"')) == "InvalidEnvelope"
    assert error_class(with_value(good(), b"x" * (1024 * 1024 + 1))) == "TooLarge"


def test_a_stream_id_the_envelope_takes_but_parse_stream_id_refuses_is_poison() -> None:
    stream_id = "user-ü1"
    record = SourceRecord("t", partition_for(stream_id, PARTITIONS), 0,
                          event_key(stream_id, 1).encode(), foreign(stream_id),
                          (("stream_id", stream_id.encode()),))
    found = classify(record, PARTITIONS)
    assert isinstance(found, Poison)
    assert type(found.error).__name__ == "InvalidStreamId"
    assert found.stream_id is None  # nothing valid to park


def test_key_disagreeing_with_the_value_is_poison_of_the_values_stream() -> None:
    for key in (None, b"user-u1", b"user-u1@2", b"user-u2@1", b"\xff\xfe", b"user-u1@01"):
        found = classify(replace(good(), key=key), PARTITIONS)
        assert isinstance(found, Poison), key
        assert type(found.error).__name__ == "KeyMismatch"
        assert found.stream_id == "user-u1"


def test_routing_headers_disagreeing_with_the_value_are_poison() -> None:
    base = good()
    for name, value in (("type", b"UserDeleted"), ("stream_id", b"user-u2"), ("version", b"9"),
                        ("schema_version", b"7"), ("stream_id", b"user-\x00u1"),
                        ("type", b"\xff\xfe")):
        record = replace(base, headers=(*base.headers, (name, value)))
        assert error_class(record) == "HeaderMismatch", (name, value)
    assert isinstance(classify(replace(base, headers=()), PARTITIONS), Item)  # absent is fine
    extra = (("trace", b"\xff" * 100_000), ("", b""))
    assert isinstance(classify(replace(base, headers=(*base.headers, *extra)), PARTITIONS), Item)


def test_an_event_on_another_partition_than_its_streams_is_poison() -> None:
    record = good()
    wrong = replace(record, partition=(record.partition + 1) % PARTITIONS)
    assert error_class(wrong) == "WrongPartition"
    assert isinstance(classify(wrong, None), Item)  # unchecked without a partition count


def test_unknown_types_future_versions_and_refused_data_are_poison() -> None:
    record = good()
    unknown = foreign("user-u1", type="UserTeleported")
    assert error_class(with_value(record, unknown, headers=())) == "UnknownMessageType"
    future = foreign("user-u1", schema_version=99)
    assert error_class(with_value(record, future, headers=())) == "UpcastError"
    bad_data = foreign("user-u1", data={"email": 5})
    assert error_class(with_value(record, bad_data, headers=())) == "ValidationError"


def test_stream_of_returns_only_valid_stream_ids() -> None:
    assert stream_of(SourceRecord("t", 0, 0, b"user-a@1", b"")) == "user-a"
    assert stream_of(SourceRecord("t", 0, 0, None, b"", (("stream_id", b"user-b"),))) == "user-b"
    for header in (b"user-\x00x", "user-ü1".encode(), b"\xff", b"nodash", b""):
        assert stream_of(SourceRecord("t", 0, 0, b"junk", b"", (("stream_id", header),))) is None


record_parts = st.tuples(
    st.integers(0, PARTITIONS - 1),
    st.none() | st.binary(max_size=64),
    st.none() | st.binary(max_size=256),
    st.lists(st.tuples(st.sampled_from(["type", "stream_id", "version", "schema_version", "x"])
                       | st.text(max_size=8), st.binary(max_size=32)), max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(record_parts)
def test_arbitrary_bytes_never_raise_and_always_classify(parts: Any) -> None:
    partition, key, value, headers = parts
    record = SourceRecord("t", partition, 0, key, value, tuple(headers))
    found = classify(record, PARTITIONS)
    assert isinstance(found, Item | Skip | Poison)
    if isinstance(found, Poison) and found.stream_id is not None:
        assert stream_of(SourceRecord("t", 0, 0, f"{found.stream_id}@1".encode(), b"")) == (
            found.stream_id)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(list(range(0, 200))))
def test_mutating_a_valid_record_never_raises(noise: bytes, at: int) -> None:
    base = good()
    value = base.value or b""
    mutated = value[:at] + noise + value[at + len(noise):]
    assert isinstance(classify(with_value(base, mutated), PARTITIONS), Item | Skip | Poison)


class RefusingStore(FakeStore):
    """A store whose `apply` raises a bare exception (no index) for any batch holding `bad`."""

    def __init__(self, bad: str) -> None:
        super().__init__()
        self.bad = bad

    async def apply(self, batch: Batch) -> Applied:
        if any(item.stream_id == self.bad for item in batch.items):
            raise RuntimeError("driver blew up on this event's data")
        return await super().apply(batch)


def run(store: FakeStore, records: list[SourceRecord]) -> tuple[BatchProcessor, ListDeadLetters]:
    dlq = ListDeadLetters()
    processor = BatchProcessor("postgres", store, dlq, sleep=_no_sleep, partitions=PARTITIONS)

    async def scenario() -> None:
        await processor.start()
        await processor.process(records)
    asyncio.run(scenario())
    return processor, dlq


def test_every_class_in_one_batch_is_accounted_for_and_the_counts_add_up() -> None:
    ok = as_records([*[envelope("user-ok", n, e) for n, e in enumerate(
        [UserCreated(email="ok@x.io", name="Ok"), UserNameChanged(name="Ok2")], 1)]],
        partitions=PARTITIONS)
    base = good("p")
    odd = "user-ü1"
    records = [
        with_value(base, None),                                        # tombstone: skipped
        replace(base, partition=(base.partition + 1) % PARTITIONS),    # wrong partition: dead
        *as_records([envelope("user-p", 2, UserNameChanged(name="P2"))],
                    partitions=PARTITIONS, start=5),                   # parked behind it
        SourceRecord("t.events", 0, 9, event_key(odd, 1).encode(), foreign(odd)),  # dead
        SourceRecord("t.events", 1, 9, None, b"\x00\xff", (("stream_id", b"user-\x00"),)),
        *ok,
    ]
    store = FakeStore()
    processor, dlq = run(store, records)
    assert processor.counters.snapshot() == {
        "consumed": 7, "applied": 2, "skipped": 1, "parked": 1, "dead_lettered": 3}
    assert [type(error).__name__ for _, error in dlq.sent] == [
        "WrongPartition", "InvalidStreamId", "NotJson"]
    assert set(store.blocked) == {"user-p"}
    assert store.users["ok"]["name"] == "Ok2"


def test_a_store_exception_naming_no_event_is_pinned_on_its_event_item_by_item() -> None:
    records = as_records([user_created("a"), user_created("bad"),
                          envelope("user-bad", 2, UserNameChanged(name="b2")),
                          user_created("c")], partitions=PARTITIONS)
    store = RefusingStore("user-bad")
    processor, dlq = run(store, records)
    assert [(r.key, type(e).__name__) for r, e in dlq.sent] == [(b"user-bad@1", "RuntimeError")]
    assert set(store.users) == {"a", "c"}
    assert set(store.blocked) == {"user-bad"}
    assert processor.counters.snapshot() == {
        "consumed": 4, "applied": 2, "skipped": 0, "parked": 1, "dead_lettered": 1}
    assert store.checkpoint_rows == {
        ("t.events", p): max(r.offset for r in records if r.partition == p)
        for p in {r.partition for r in records}}


class BrokenStore(FakeStore):
    """A store refusing every batch alike for its first `times` calls (an index gone, a bad
    migration): the store's fault, not any event's."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    async def apply(self, batch: Batch) -> Applied:
        if batch.items and self.times > 0:
            self.times -= 1
            raise RuntimeError("index_not_found_exception")
        return await super().apply(batch)


def test_a_store_refusing_every_event_alike_dead_letters_none_and_retries_the_batch() -> None:
    records = as_records([user_created("a"), user_created("b"), user_created("c")],
                         partitions=PARTITIONS)
    store = BrokenStore(times=12)  # the whole batch, then each of its three items, three rounds
    processor, dlq = run(store, records)
    assert dlq.sent == []
    assert store.blocked == {}
    assert set(store.users) == {"a", "b", "c"}
    assert processor.counters.snapshot() == {
        "consumed": 3, "applied": 3, "skipped": 0, "parked": 0, "dead_lettered": 0}


def test_data_postgresql_cannot_hold_is_poison_in_the_fake_as_in_the_store() -> None:
    nul = as_records([envelope("user-n", 1, UserCreated.model_construct(
        email="n@x.io", name="a\x00b"))], partitions=PARTITIONS)
    store = FakeStore()
    processor, dlq = run(store, [*nul, good("fine")])
    # ValidationError once the events' own limits refuse NUL; the fake's ValueError until then
    assert [type(error).__name__ for _, error in dlq.sent] in (["ValueError"], ["ValidationError"])
    assert set(store.users) == {"fine"}
    assert processor.counters.dead_lettered == 1


def test_an_event_no_store_can_hold_is_poison_for_every_projector() -> None:
    """NUL, a lone surrogate, text past a keyword term or money past bigint, written by some other
    producer: refused by the event model itself, so both read models dead-letter it alike."""
    base = json.loads(encode(user_created("u1")))
    for data in ({"email": "a@b.io", "name": "a\u0000b"},
                 {"email": "a@b.io", "name": "n" * 40_000}):
        value = json.dumps({**base, "data": data}).encode()
        assert error_class(with_value(good(), value)) == "ValidationError", data
    lone_surrogate = json.dumps({**base, "data": {"email": "a@b.io", "name": "\ud800"}})
    assert error_class(with_value(good(), lone_surrogate.encode())) == "NotJson"
    order = envelope("order-o1", 1, UserCreated(email="a@b.io", name="A"))
    document = json.loads(encode(order))
    document.update(type="OrderPaid", schema_version=1,
                    data={"amount": 2**63, "payment_ref": "p"})
    record = SourceRecord("t", partition_for("order-o1", PARTITIONS), 0, b"order-o1@1",
                          json.dumps(document).encode())
    assert error_class(record) == "ValidationError"
