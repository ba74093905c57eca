"""Hostile records for the wire fuzz suite: what any Kafka client could put on the commands and
events topics, generated from a seed so a failing run can be replayed (`CQRS_FUZZ_SEED`).

Every command record is a `Sent` with the kind it was made as; the suite accounts for each by
the project's own `peek_command_id` (a readable command id must get a result, anything else a
dead letter at its source position).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.support.events import envelope as event_envelope
from tests.support.schemas import from_schema, load
from topics import COMMANDS, UserCreated, encode, event_key, headers_for_event, partition_for

ISSUED_AT = "2026-12-01T12:00:00+00:00"


@dataclass(frozen=True)
class Sent:
    """One record to produce: where, what, and the kind of hostility it stands for."""

    kind: str
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def draw_many(strategy: st.SearchStrategy[Any], count: int, seed_value: int) -> list[Any]:
    """`count` values of `strategy`, as hypothesis explores it (boundaries first), reproducibly."""
    found: list[Any] = []

    @seed(seed_value)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found[:count]


def aggregate_of(type_name: str) -> str:
    spec = COMMANDS.get(type_name)
    return spec.aggregate_type if spec else "user"


def envelope(type_name: str, aggregate_id: str, data: Any, **fields: Any) -> dict[str, Any]:
    return {"command_id": uuid.uuid4().hex, "type": type_name, "aggregate_id": aggregate_id,
            "data": data, "issued_at": ISSUED_AT, **fields}


def id_bound() -> int:
    """The longest aggregate id the published envelope schema allows."""
    pattern = load("CommandEnvelope")["properties"]["aggregate_id"]["pattern"]
    return int(re.findall(r"\{\d+,(\d+)\}", pattern)[-1])


class Commands:
    """Command records of every kind, on `topic` with `partitions` partitions."""

    def __init__(self, topic: str, partitions: int, seed: int) -> None:
        self.topic, self.partitions, self.seed = topic, partitions, seed
        self.random = random.Random(seed)

    def record(self, kind: str, document: Any, *, partition: int | None = None,
               raw: bytes | None = None, key: bytes | None = None) -> Sent:
        value = raw if raw is not None else json.dumps(document).encode()
        if key is None and isinstance(document, dict):
            key = f"{aggregate_of(str(document.get('type')))}-{document.get('aggregate_id')}"\
                .encode("utf-8", "replace")
        if partition is None:
            partition = partition_for(key.decode("utf-8", "replace"), self.partitions) \
                if key else self.random.randrange(self.partitions)
        return Sent(kind, self.topic, partition, key, value)

    def random_bytes(self, count: int) -> Iterator[Sent]:
        rnd = self.random
        for _ in range(count):
            size = rnd.choice([0, 1, 2, 17, 100, 1000, 5000, 70_000])
            value = rnd.randbytes(size) if rnd.random() > 0.05 else None
            key = rnd.choice([None, b"", rnd.randbytes(rnd.randrange(1, 300))])
            yield Sent("random-bytes", self.topic, rnd.randrange(self.partitions), key, value)

    def random_json(self, count: int) -> Iterator[Sent]:
        documents = draw_many(st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                         max_size=4),
            max_leaves=12), count, self.seed)
        for index, document in enumerate(documents):
            if isinstance(document, dict) and index % 2:
                document["command_id"] = uuid.uuid4().hex
            raw = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
            yield self.record("random-json", document, raw=raw, key=b"junk",
                              partition=self.random.randrange(self.partitions))

    def schema_drawn(self, count: int) -> Iterator[Sent]:
        """Commands whose data is drawn from each type's published schema (valid for it)."""
        types = sorted(COMMANDS)
        drawn = draw_many(st.tuples(st.sampled_from(types), st.integers(0, 40)).flatmap(
            lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), from_schema(pair[0]))),
            count, self.seed + 1)
        for type_name, number, data in drawn:
            prefix = "u" if aggregate_of(type_name) == "user" else "o"
            if "customer_id" in data and number % 2:
                data["customer_id"] = f"u{number}"
            yield self.record("schema-drawn", envelope(type_name, f"{prefix}{number}", data))

    def extremes(self) -> Iterator[Sent]:
        longest = "x" * id_bound()
        big_order = {"customer_id": "u1", "currency": "EUR",
                     "items": [{"sku": f"s{i}", "quantity": 1_000_000,
                                "unit_price": 10**12} for i in range(100)]}
        cases: list[tuple[str, Any]] = [
            ("longest-id", envelope("CreateUser", longest, {"email": "a@b.io", "name": "A"})),
            ("longest-order-id", envelope("CreateOrder", longest, big_order)),
            ("too-long-id", envelope("CreateUser", longest + "y", {"email": "a@b.io",
                                                                    "name": "A"})),
            ("nul-name", envelope("CreateUser", "u-nul", {"email": "n@b.io", "name": "a\x00b"})),
            ("control-name", envelope("CreateUser", "u-ctl", {"email": "c@b.io",
                                                               "name": "a\x1b[31mb"})),
            ("huge-name", envelope("CreateUser", "u-huge", {"email": "h@b.io",
                                                             "name": "\U0001f600" * 200})),
            ("max-total", envelope("CreateOrder", "o-max", big_order)),
            ("huge-version", envelope("UpdateUser", "u1", {"name": "B"},
                                      expected_version=2**63)),
            ("far-future", {**envelope("CreateUser", "u-far", {"email": "f@b.io", "name": "F"}),
                            "issued_at": "9999-12-31T23:59:59+14:00"}),
            ("unknown-type", envelope("LaunchRocket", "r1", {})),
            ("data-not-object", envelope("CreateUser", "u-list", [1, 2, 3])),
        ]
        for kind, document in cases:
            yield self.record(f"extreme:{kind}", document)
        padding = "p" * 65_000
        yield self.record("extreme:over-64k", envelope("CreateUser", "u-pad", {
            "email": "p@b.io", "name": "P", "pad": padding}))
        for size in (1_040_000, 1_000_000):
            raw = json.dumps(envelope("CreateUser", "u-big", {"name": "B"})).encode()
            yield self.record("extreme:near-1mib", None, raw=raw + b" " * (size - len(raw)),
                              key=b"user-u-big")

    def valid(self, count: int) -> Iterator[Sent]:
        """Honest commands, some on a wrong partition (forwarded), some sent twice."""
        rnd = self.random
        for index in range(count):
            # Each user's life in six commands, in order (unless forwarded, which reorders).
            user, choice = f"u{index // 6}", index % 6
            if choice == 0:
                document = envelope("CreateUser", user, {"email": f"{user}@example.com",
                                                         "name": f"User {index}"})
            elif choice in (1, 2):
                document = envelope("UpdateUser", user, {"name": f"Renamed {index}"})
            elif choice == 3:
                document = envelope("CreateOrder", f"o{index}", {
                    "customer_id": user, "currency": "EUR",
                    "items": [{"sku": "s1", "quantity": 2, "unit_price": 150}]})
            elif choice == 4:
                document = envelope("PayOrder", f"o{index - 1}", {"payment_ref": f"pay-{index}"})
            else:
                document = envelope("DeactivateUser", user, {"reason": "fuzz"})
            partition = rnd.randrange(self.partitions) if rnd.random() < 0.15 else None
            sent = self.record("valid", document, partition=partition)
            yield sent
            if rnd.random() < 0.05:
                yield Sent("valid:resent", sent.topic, sent.partition, sent.key, sent.value)

    def mutated(self, count: int) -> Iterator[Sent]:
        rnd = self.random
        mutations: list[Callable[[dict[str, Any]], Any]] = [
            lambda d: {**d, "type": rnd.choice([None, 1, "", "createUser", "X" * 100])},
            lambda d: {**d, "aggregate_id": rnd.choice(["", "ü", "a b", None, 7, "a" * 500])},
            lambda d: {**d, "data": {**d["data"], "email": rnd.choice([None, 1, "x", "a@b"])}},
            lambda d: {**d, "data": {**d["data"], "name": rnd.choice(["", " ", "\ud800", 5])}},
            lambda d: {**d, "issued_at": rnd.choice(["yesterday", "2024-01-01T00:00:00", 0])},
            lambda d: {**d, "expected_version": rnd.choice([-1, "1", 1.5, 2**64])},
            lambda d: {**d, "extra": "field"},
            lambda d: {k: v for k, v in d.items() if k != rnd.choice(list(d))},
        ]
        for index in range(count):
            document = envelope("CreateUser", f"m{index % 50}", {"email": f"m{index}@e.io",
                                                                 "name": f"M {index}"})
            if index % 5 == 4:
                raw = json.dumps(document).encode()
                cut = rnd.randrange(len(raw))
                flipped = raw[:cut] + bytes([raw[cut] ^ (1 << rnd.randrange(8))]) + raw[cut + 1:]
                yield self.record("mutated:bytes", document, raw=flipped)
                continue
            mutated = rnd.choice(mutations)(document)
            raw = json.dumps(mutated).encode("utf-8", "surrogatepass")
            yield self.record("mutated:field", mutated, raw=raw,
                              key=f"user-m{index % 50}".encode())


class ForeignEvents:
    """Records on the events topic that the processor never wrote: every kind a projector must
    classify (applied, skipped, or dead-lettered) without stopping. Streams are `user-f...`, so
    they never meet the streams the processor writes."""

    def __init__(self, topic: str, partitions: int, seed: int) -> None:
        self.topic, self.partitions = topic, partitions
        self.random = random.Random(seed)

    def _event(self, kind: str, stream_id: str, version: int = 1, name: str = "Foreign",
               *, partition: int | None = None, key: bytes | None = None,
               headers: tuple[tuple[str, bytes], ...] | None = None,
               mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Sent:
        created = UserCreated.model_construct(email=f"f{version}@example.com", name=name)
        found = event_envelope(stream_id, version, created)
        value = encode(found)
        if mutate is not None:
            value = json.dumps(mutate(json.loads(value))).encode()
        own_headers = tuple(headers_for_event(found)) if headers is None else headers
        if partition is None:
            partition = partition_for(stream_id, self.partitions)
        if key is None:
            key = event_key(stream_id, version).encode("utf-8", "replace")
        return Sent(kind, self.topic, partition, key, value, own_headers)

    def all(self, rounds: int) -> Iterator[Sent]:
        rnd = self.random
        for i in range(rounds):
            yield self._event("foreign:valid", f"user-fv{i}")
            # A compacted topic refuses records without a key: the broker, not us, rules those out.
            yield Sent("foreign:random-bytes", self.topic, rnd.randrange(self.partitions),
                       rnd.choice([b"", rnd.randbytes(20)]), rnd.randbytes(rnd.randrange(300)))
            yield Sent("foreign:tombstone", self.topic, partition_for(f"user-ft{i}",
                       self.partitions), f"user-ft{i}@1".encode(), None)
            yield self._event("foreign:unknown-type", f"user-fu{i}",
                              mutate=lambda d: {**d, "type": "UserTeleported"})
            yield self._event("foreign:future-schema", f"user-fs{i}",
                              mutate=lambda d: {**d, "schema_version": 99})
            odd = f"user-f\u00fc{i}"
            yield self._event("foreign:non-ascii-id", f"user-fa{i}", key=f"{odd}@1".encode(),
                              headers=(("stream_id", odd.encode()),),
                              mutate=lambda d, odd=odd: {**d, "stream_id": odd})
            yield self._event("foreign:bad-stream-id", f"user-fb{i}", key=f"User-fb{i}@1".encode(),
                              mutate=lambda d, i=i: {**d, "stream_id": f"User-fb{i}"})
            yield self._event("foreign:key-mismatch", f"user-fk{i}",
                              key=f"user-fk{i}x@1".encode())
            yield self._event("foreign:header-mismatch", f"user-fh{i}",
                              headers=(("type", b"UserDeactivated"), ("stream_id", b"user-fz"),
                                       ("version", b"7")))
            yield self._event("foreign:wrong-partition", f"user-fw{i}",
                              partition=(partition_for(f"user-fw{i}", self.partitions) + 1)
                              % self.partitions)
            yield self._event("foreign:nul-name", f"user-fn{i}", name="a\x00b")
            yield self._event("foreign:control-name", f"user-fc{i}", name="a\x07b")
            yield self._event("foreign:hostile-headers", f"user-fx{i}",
                              headers=(("stream_id", b"\x00"), ("type", b"\xff\xfe"),
                                       ("junk", b"j" * 20_000)))
            yield self._event("foreign:gap", f"user-fg{i}", version=5)
            yield self._event("foreign:bigint", f"user-fi{i}",
                              mutate=lambda d: {**d, "version": 2**64})
        raw = encode(event_envelope("user-fbig", 1, UserCreated(email="b@e.io", name="B")))
        yield Sent("foreign:near-1mib", self.topic, partition_for("user-fbig", self.partitions),
                   b"user-fbig@1", raw + b" " * (1_040_000 - len(raw)),
                   tuple(headers_for_event(event_envelope(
                       "user-fbig", 1, UserCreated(email="b@e.io", name="B")))))
