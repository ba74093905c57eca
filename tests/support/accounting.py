"""Raw-client accounting after a run under load: nothing lost, nothing written twice.

`account` reads `<p>command-results` and `<p>events` with plain read_committed consumers and
checks what the failover and many-workers tests promise: every command sent answered exactly
once and accepted, versions gapless per stream, no event key twice, one event per command, the
`users` rows equal to the fold of the events (the projector's rule, through the fake store),
and, given a reader of the search index, its documents equal to the search projector's fold.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from projections.postgres.fake import FakeStore
from projections.runtime import Batch
from projections.runtime.classify import decode
from projections.runtime.records import SourceRecord
from projections.search.documents import UserDocument
from projections.search.fake import FakeSearchStore
from tests.support.cluster import wait
from tests.support.processor import Read, read_all
from topics import Catalogue, decode_event, decode_result

Rows = dict[str, tuple[Any, ...]]
Documents = dict[str, UserDocument]
USER_COLUMNS = ("id", "email", "name", "active", "created_at", "updated_at", "version")
USERS_QUERY = f"SELECT {', '.join(USER_COLUMNS)} FROM users".encode()


def account(kafka: dict[str, str], catalogue: Catalogue, sent: set[str],
            users: Callable[[], Rows], rows_timeout_s: float = 90,
            documents: Callable[[], Documents] | None = None) -> dict[str, int]:
    """The checks over everything `sent` so far (all answered already); returns the counts.
    `users()` reads the live `users` rows by id, `documents()` every document of the search
    alias by id; each is waited for until it equals its projector's fold of the events."""
    results = [decode_result(r.value or b"")
               for r in read_all(kafka, catalogue.command_results.name)]
    answers = Counter(result.command_id for result in results)
    outcomes = Counter(result.status for result in results)
    assert set(answers) == sent, "a command unanswered, or an answer to an unknown command"
    twice = [command_id for command_id, count in answers.items() if count > 1]
    assert not twice, f"{len(twice)} commands answered more than once"
    assert outcomes == {"accepted": len(sent)}, outcomes
    events = read_all(kafka, catalogue.events.name)
    keys = Counter(record.key for record in events)
    assert [key for key, count in keys.items() if count > 1] == [], "an event key written twice"
    versions: dict[str, list[int]] = defaultdict(list)
    for record in events:
        event = decode_event(record.value or b"")
        versions[event.stream_id].append(event.version)
    for stream_id, found in versions.items():
        assert found == list(range(1, len(found) + 1)), (stream_id, found)
    assert len(events) == len(sent)
    expected = fold(events, catalogue.events.name)
    wait("the users rows to equal the fold of the events",
         lambda: users() == expected, rows_timeout_s)
    counts = {"sent": len(sent), "answered": sum(answers.values()), "events": len(events),
              "streams": len(versions), "users_rows": len(expected)}
    if documents is not None:
        indexed = fold_documents(events, catalogue.events.name)
        wait("the search documents to equal the fold of the events",
             lambda: documents() == indexed, rows_timeout_s)
        counts["search_documents"] = len(indexed)
    return counts


def fold(events: list[Read], topic: str) -> Rows:
    """The `users` rows the projector's rule gives for `events` (the fake store folds with it)."""
    store = FakeStore()
    asyncio.run(store.apply(_batch(events, topic)))
    return {user_id: tuple(row[column] for column in USER_COLUMNS)
            for user_id, row in store.users.items()}


def fold_documents(events: list[Read], topic: str) -> Documents:
    """The search documents the search projector's rule gives for `events` (its fake store)."""
    store = FakeSearchStore()
    asyncio.run(store.apply(_batch(events, topic)))
    return dict(store.documents.stored)


def _batch(events: list[Read], topic: str) -> Batch:
    records = [SourceRecord(topic, r.partition, r.offset, r.key, r.value,
                            tuple((name, value.encode()) for name, value in r.headers.items()))
               for r in events]
    return Batch([decode(record) for record in records], checkpoints={})
