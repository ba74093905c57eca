"""A fact: what the managers learn of one customer from one event, keyed by the customer's stream.

The router (stage one) turns events of user and order streams into facts and repartitions them by
customer (`<prefix>managers.facts`, key = the customer's user stream id, partition =
`partition_for(customer)`), so every fact about one customer is read, in one order, by the member
that owns that customer's state. A fact names its source event (`source` stream and `version`),
which makes applying it twice a no-op (`state.evolve`), and carries what a compensating command
needs: the event's time and correlation id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final

from topics import parse_stream_id

USER_ACTIVE: Final = "user.active"
"""`UserCreated` or `UserReactivated`."""
USER_DEACTIVATED: Final = "user.deactivated"
USER_FORGOTTEN: Final = "user.forgotten"
ORDER_CREATED: Final = "order.created"
ORDER_CLOSED: Final = "order.closed"
"""`OrderPaid`, `OrderShipped` or `OrderCancelled`: no longer for the managers to cancel."""

KINDS: Final = frozenset({USER_ACTIVE, USER_DEACTIVATED, USER_FORGOTTEN, ORDER_CREATED,
                          ORDER_CLOSED})
USER_KINDS: Final = frozenset({USER_ACTIVE, USER_DEACTIVATED, USER_FORGOTTEN})
MAX_FACT_BYTES: Final = 4096
"""Facts are small (ids, a time); anything larger on the facts topic is not one of ours."""


class InvalidFact(ValueError):
    """A record of the facts topic that is not a fact (dead-lettered by the manager)."""


@dataclass(frozen=True)
class Fact:
    """Event `source@version` says `kind` about customer `customer` (a `user-<id>` stream id)."""

    customer: str
    kind: str
    source: str
    version: int
    occurred_at: str
    """ISO 8601 time of the event (a compensating command's `issued_at`: deterministic)."""
    correlation_id: str | None = None

    @property
    def cause(self) -> str:
        """The source event's key, `<stream_id>@<version>`: what a command id is derived from."""
        return f"{self.source}@{self.version}"


def encode_fact(fact: Fact) -> bytes:
    return json.dumps(asdict(fact), separators=(",", ":"), sort_keys=True).encode()


def decode_fact(raw: bytes | None) -> Fact:
    """The fact in `raw`; raises `InvalidFact` for anything else."""
    if raw is None or len(raw) > MAX_FACT_BYTES:
        raise InvalidFact("a fact is a JSON object of at most 4096 bytes")
    try:
        document = json.loads(raw)
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        raise InvalidFact(f"not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != set(Fact.__dataclass_fields__):
        raise InvalidFact("not a fact object")
    texts = ("customer", "kind", "source", "occurred_at")
    if not all(isinstance(document[name], str) for name in texts):
        raise InvalidFact("customer, kind, source and occurred_at must be strings")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidFact("version must be a positive integer")
    if document["correlation_id"] is not None and not isinstance(document["correlation_id"],
                                                                  str):
        raise InvalidFact("correlation_id must be a string or null")
    try:
        when = datetime.fromisoformat(document["occurred_at"])
    except ValueError:
        raise InvalidFact("occurred_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise InvalidFact("occurred_at must carry its offset")
    if document["kind"] not in KINDS:
        raise InvalidFact(f"unknown fact kind {document['kind'][:100]!r}")
    fact = Fact(**document)
    try:
        customer_type, _ = parse_stream_id(fact.customer)
        parse_stream_id(fact.source)
    except Exception as error:
        raise InvalidFact(str(error)) from None
    if customer_type != "user":
        raise InvalidFact(f"customer {fact.customer[:100]!r} is not a user stream")
    return fact
