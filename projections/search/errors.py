"""The search projection's errors; poison events are data (`PoisonEvent`), not exceptions.

SearchError
├── SearchUnavailable   transient: connection refused/reset, timeout, 429, 5xx; retry the
│                       whole batch (idempotent: already-written documents answer 409)
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
