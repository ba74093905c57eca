"""Measure the search projector's write path (`writes.apply_documents` with the runtime's
decoded events: one mget + one bulk per batch). Its entry point is `python -m cqrs.search_bench`,
which reads the settings (`CQRS_ES_URL`, `CQRS_ES_API_KEY`) and hands `main` the cluster, which
`--es-url`/`--es-api-key` override; nothing here reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import time

from projections.config import SearchConfig
from projections.search.client import make_client
from projections.search.index import IndexNames, drop_indices, ensure_index
from projections.search.store import ElasticsearchUserStore
from projections.search.writes import apply_documents
from topics import (
    Event,
    EventEnvelope,
    UserCreated,
    UserEmailChanged,
    UserNameChanged,
    from_envelope,
    to_envelope,
)

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
            event = UserCreated(email=f"user{index}@example.com", name=f"User {index}")
        elif versions[index] % 2:
            event = UserEmailChanged(email=f"u{index}.{versions[index]}@example.org")
        else:
            event = UserNameChanged(name=f"Person {index} v{versions[index]}")
        stream_id = f"user-u{index}"
        events.append(
            to_envelope(
                event, stream_id, versions[index], f"{stream_id}@{versions[index]}", T0, None, None
            )
        )
    return events


async def run(search: SearchConfig, events: int, users_count: int, batch: int) -> None:
    names = IndexNames.for_prefix(f"bench-{int(time.time())}.")
    async with make_client(search) as client:
        await ensure_index(client, names)
        store = ElasticsearchUserStore(client, names.alias)
        log = synthetic_events(events, users_count)
        decoded = [from_envelope(envelope) for envelope in log]  # as the runtime does
        started, cpu_started = time.perf_counter(), time.process_time()
        applied = 0
        for start in range(0, len(log), batch):
            # The search projector's path: the runtime's decoded events are folded, not re-decoded.
            written = await apply_documents(
                store, log[start : start + batch], decoded[start : start + batch]
            )
            applied += written.applied
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        await drop_indices(client, names)
    print(
        f"{applied} events applied in {elapsed:.2f}s: {applied / elapsed:,.0f} events/s "
        f"(batch {batch}, {users_count} users; this process's CPU: {cpu:.2f}s)"
    )


def main(search: SearchConfig, argv: list[str] | None = None) -> None:
    """Parse `argv` (default: the process's arguments) and run; `search` is the default cluster."""
    parser = argparse.ArgumentParser(prog="python -m cqrs.search_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--es-url", default=search.url)
    parser.add_argument("--es-api-key", default=search.api_key)
    options = parser.parse_args(argv)
    chosen = dataclasses.replace(search, url=options.es_url, api_key=options.es_api_key)
    asyncio.run(run(chosen, options.events, options.users, options.batch))
