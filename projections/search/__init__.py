"""The users search projection: mapping, alias management, pure projector, stores and query."""

from projections.search.documents import RefusedEvent, UserDocument, evolve_document, plan_batch
from projections.search.errors import (
    IndexConflict,
    InvalidSearch,
    SearchError,
    SearchUnavailable,
)
from projections.search.index import IndexNames, ensure_index, load_mapping, swap_alias
from projections.search.query import UserHit, UserSearch, UserSearchResult, build_search
from projections.search.store import ElasticsearchUserStore
from projections.search.writes import UserDocuments, WriteReport, apply_documents

__all__ = [
    "ElasticsearchUserStore",
    "IndexConflict",
    "IndexNames",
    "InvalidSearch",
    "RefusedEvent",
    "SearchError",
    "SearchUnavailable",
    "UserDocument",
    "UserDocuments",
    "UserHit",
    "UserSearch",
    "UserSearchResult",
    "WriteReport",
    "apply_documents",
    "build_search",
    "ensure_index",
    "evolve_document",
    "load_mapping",
    "plan_batch",
    "swap_alias",
]
