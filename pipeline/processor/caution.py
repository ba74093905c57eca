"""After a recovery: which records go one per transaction, and when one is given up on.

A batch whose transaction failed is met again after the rewind. Its range (per partition, up to
the failed batch's last offset) is then processed one record per transaction, so a fault that a
record causes is pinned on that record. A record whose own transaction failed `MAX_STRIKES` times
with a fault that implicates it (`ProducerFault.implicates_record`: too large, invalid record,
refused argument) becomes a pointer-only dead letter in its own transaction; if even that fails
`MAX_STRIKES` more times, the record is skipped (offsets only) and logged. Faults that do not
implicate the record (transport, timeouts, broker outages, coordinator moves) never count: the
range is simply retried, so a broker outage dead-letters nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pipeline.processor.records import InboundRecord
from pipeline.processor.transactions import ProducerFault

MAX_STRIKES = 3
"""Single-record transactions a record may fail (implicated) before it is given up on."""

CautionVerdict = Literal["handle", "pointer", "skip"]


class Caution:
    """Cautious ranges per partition and implicated failures per record (partition, offset)."""

    def __init__(self, max_strikes: int = MAX_STRIKES) -> None:
        self._max_strikes = max_strikes
        self._until: dict[int, int] = {}
        self._strikes: dict[tuple[int, int], int] = {}

    @property
    def active(self) -> bool:
        return bool(self._until)

    def cautious(self, record: InboundRecord) -> bool:
        return record.offset <= self._until.get(record.partition, -1)

    def chunks(self, records: list[InboundRecord]) -> Iterator[list[InboundRecord]]:
        """`records` in order as transactions: a record in a cautious range alone, runs of the
        others together."""
        if not self._until:  # no recovery under way: one transaction
            if records:
                yield records
            return
        run: list[InboundRecord] = []
        for record in records:
            if not self.cautious(record):
                run.append(record)
                continue
            if run:
                yield run
                run = []
            yield [record]
        if run:
            yield run

    def verdict(self, record: InboundRecord) -> CautionVerdict:
        strikes = self._strikes.get((record.partition, record.offset), 0)
        if strikes >= 2 * self._max_strikes:
            return "skip"
        if strikes >= self._max_strikes:
            return "pointer"
        return "handle"

    def failed(self, records: list[InboundRecord], fault: ProducerFault) -> None:
        """A transaction of `records` failed: they become cautious; one alone takes a strike if
        the fault implicates it."""
        for record in records:
            known = self._until.get(record.partition, -1)
            self._until[record.partition] = max(known, record.offset)
        if len(records) == 1 and fault.implicates_record:
            key = (records[0].partition, records[0].offset)
            self._strikes[key] = self._strikes.get(key, 0) + 1

    def committed(self, records: Iterable[InboundRecord]) -> None:
        if not (self._until or self._strikes):
            return
        for record in records:
            self._strikes.pop((record.partition, record.offset), None)
            if record.offset >= self._until.get(record.partition, record.offset + 1):
                del self._until[record.partition]

    def resumed_at(self, partition: int, offset: int) -> None:
        """The committed position of `partition` after a rewind: ranges it has passed end (the
        failed commit had in fact succeeded)."""
        if offset > self._until.get(partition, offset):
            del self._until[partition]

    def forget(self, partition: int) -> None:
        """`partition` was revoked: its next owner starts its own count."""
        self._until.pop(partition, None)
        self._strikes = {key: n for key, n in self._strikes.items() if key[0] != partition}
