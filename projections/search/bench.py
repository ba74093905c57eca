"""Measure the search projector's write path (`ElasticsearchUserStore.plan` with the runtime's
decoded events, then `write`: one mget + one bulk per batch): `python -m projections.search.bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time

from elasticsearch import AsyncElasticsearch

from cqrs.settings import Settings
from pipeline import contracts
from pipeline.domain import users
from pipeline.domain.common import Event
from projections.search.index import IndexNames, drop_indices, ensure_index
from projections.search.store import ElasticsearchUserStore
from topics.envelopes import EventEnvelope

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def synthetic_events(count: int, users_count: int) -> list[EventEnvelope]:
    """`count` user events over `users_count` users: creates first, then renames/email changes."""
    versions = [0] * users_count
    events: list[EventEnvelope] = []
    for number in range(count):
        index = number % users_count
        versions[index] += 1
        event: Event
        if versions[index] == 1:
            event = users.UserCreated(email=f"user{index}@example.com", name=f"User {index}")
        elif versions[index] % 2:
            event = users.UserEmailChanged(email=f"u{index}.{versions[index]}@example.org")
        else:
            event = users.UserNameChanged(name=f"Person {index} v{versions[index]}")
        stream_id = f"user-u{index}"
        events.append(
            contracts.to_envelope(
                event, stream_id, versions[index], f"{stream_id}@{versions[index]}", T0, None, None
            )
        )
    return events


async def run(events: int, users_count: int, batch: int) -> None:
    settings = Settings()
    names = IndexNames.for_prefix(f"bench-{int(time.time())}.")
    async with AsyncElasticsearch(settings.es_url, api_key=settings.es_api_key) as client:
        await ensure_index(client, names)
        store = ElasticsearchUserStore(client, names.alias)
        log = synthetic_events(events, users_count)
        decoded = [contracts.from_envelope(envelope) for envelope in log]  # as the runtime does
        started, cpu_started = time.perf_counter(), time.process_time()
        applied = 0
        for start in range(0, len(log), batch):
            # The search projector's path: the runtime's decoded events are folded, not re-decoded.
            plan = await store.plan(log[start : start + batch], decoded[start : start + batch])
            applied += (await store.write(plan)).applied
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        await drop_indices(client, names)
    print(
        f"{applied} events applied in {elapsed:.2f}s: {applied / elapsed:,.0f} events/s "
        f"(batch {batch}, {users_count} users; this process's CPU: {cpu:.2f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    options = parser.parse_args()
    asyncio.run(run(options.events, options.users, options.batch))


if __name__ == "__main__":
    main()
