"""The users search projection: mapping, alias management, pure projector, stores and query."""

from projections.search.documents import PoisonEvent, UserDocument, plan_batch
from projections.search.errors import (
    IndexConflict,
    InvalidSearch,
    SearchError,
    SearchUnavailable,
)
from projections.search.fake import FakeUserStore
from projections.search.index import IndexNames, ensure_index, load_mapping, swap_alias
from projections.search.outcome import BatchOutcome
from projections.search.query import UserHit, UserSearch, UserSearchResult, build_search
from projections.search.store import ElasticsearchUserStore

__all__ = [
    "BatchOutcome",
    "ElasticsearchUserStore",
    "FakeUserStore",
    "IndexConflict",
    "IndexNames",
    "InvalidSearch",
    "PoisonEvent",
    "SearchError",
    "SearchUnavailable",
    "UserDocument",
    "UserHit",
    "UserSearch",
    "UserSearchResult",
    "build_search",
    "ensure_index",
    "load_mapping",
    "plan_batch",
    "swap_alias",
]
