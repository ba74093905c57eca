"""The search projection's errors. Events the fold refuses are data (`documents.RefusedEvent`);
the store raises them as the runtime's `PoisonEvent`, caused by an `UnprojectableEvent`.

SearchError
├── SearchUnavailable   transient: connection refused/reset, timeout, 429, 5xx; retry the
│                       whole batch (idempotent: already-written documents answer 409)
├── UnprojectableEvent  the cause inside `PoisonEvent` for an event the projector cannot apply
├── StateWriteRefused   the state index refused the projector's own bookkeeping (parked,
│                       blocked, checkpoints) for a reason a retry cannot cure: a setting or
│                       a permission, no event's fault (the projector stops, status 70)
├── IndexConflict       the alias or index is in a state `ensure_index` will not repair
│                       (alias name held by a concrete index, another mapping version)
└── InvalidSearch       query parameters out of range (also a `ValueError`)
"""

from __future__ import annotations


class SearchError(Exception):
    """Base of every error raised by `projections.search`."""


class SearchUnavailable(SearchError):
    """Elasticsearch could not take the request now; retrying the same request is safe."""


class IndexConflict(SearchError):
    """The index or alias exists in a shape this code does not own; needs a human."""


class InvalidSearch(SearchError, ValueError):
    """A search request with parameters out of range (limit, offset, text length)."""


class UnprojectableEvent(SearchError):
    """The cause carried by `PoisonEvent` for an event the search projector cannot apply."""


class StateWriteRefused(SearchError):
    """The state index refused a write of the projector's own records, not transiently (a
    403, a 400, a 413 for a single record under a lowered `http.max_content_length`)."""
