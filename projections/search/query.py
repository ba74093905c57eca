"""SearchUsers: typo-tolerant, prefix-aware search over the users alias, from fixed fields only.

User text is only ever the `query` of `term`/`match`/`multi_match` clauses, never parsed as query
syntax (no `query_string`, no `simple_query_string`), so `name:* OR (` is just text. Ranking, from
strongest to weakest signal: the whole name or email exactly; the words as a phrase in the name;
all words present; the last word as a prefix (`bool_prefix`, served by `index_prefixes`); words
within edit distance AUTO (fuzzy). Results are ordered by score, then name, then id.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, ConnectionError, ConnectionTimeout
from pydantic import BaseModel, ConfigDict

from projections.search.errors import InvalidSearch, SearchUnavailable

MAX_TEXT_LENGTH = 200
MAX_LIMIT = 100
MAX_WINDOW = 10_000
"""`index.max_result_window`: `offset + limit` may not pass it."""

_NAME_FIELDS = ["name^3", "email.text", "email.parts"]
_FUZZY_FIELDS = ["name^2", "email.parts"]


class UserHit(BaseModel):
    """One user found; `score` is Elasticsearch's relevance (`None` when listing without text)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str
    active: bool
    version: int
    score: float | None


class UserSearchResult(BaseModel):
    """A page of hits and how many users matched in all (`total`, exact up to 10,000)."""

    model_config = ConfigDict(frozen=True)

    total: int
    hits: list[UserHit]


def build_search(
    text: str, *, limit: int = 10, offset: int = 0, active_only: bool = False
) -> dict[str, Any]:
    """The search request body for `text` (pure); raises `InvalidSearch` for bad parameters."""
    _check(text, limit, offset)
    words = " ".join(text.split())
    query: dict[str, Any]
    if not words:
        query = {"match_all": {}}
        sort: list[Any] = [{"name.raw": "asc"}, {"user_id": "asc"}]
    else:
        query = {"bool": {"should": _clauses(words), "minimum_should_match": 1}}
        sort = ["_score", {"name.raw": "asc"}, {"user_id": "asc"}]
    if active_only:
        query = {"bool": {"must": [query], "filter": [{"term": {"active": True}}]}}
    return {
        "query": query,
        "from": offset,
        "size": limit,
        "sort": sort,
        "track_total_hits": MAX_WINDOW,
        "_source": ["user_id", "name", "email", "active", "version"],
    }


def _clauses(words: str) -> list[dict[str, Any]]:
    lowered = words.lower()
    return [
        {"term": {"name.raw": {"value": lowered, "boost": 20}}},
        {"term": {"email": {"value": lowered, "boost": 20}}},
        {"match_phrase": {"name": {"query": words, "boost": 8}}},
        {
            "multi_match": {
                "query": words,
                "type": "best_fields",
                "fields": _NAME_FIELDS,
                "operator": "and",
                "boost": 4,
            }
        },
        {
            "multi_match": {
                "query": words,
                "type": "bool_prefix",
                "fields": _NAME_FIELDS,
                "boost": 2,
            }
        },
        {
            "multi_match": {
                "query": words,
                "type": "best_fields",
                "fields": _FUZZY_FIELDS,
                "fuzziness": "AUTO",
                "prefix_length": 1,
                "max_expansions": 50,
                "boost": 1,
            }
        },
    ]


def _check(text: str, limit: int, offset: int) -> None:
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidSearch(f"the search text is longer than {MAX_TEXT_LENGTH} characters")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0 or offset + limit > MAX_WINDOW:
        raise InvalidSearch(f"offset must be >= 0 and offset + limit <= {MAX_WINDOW}")


class UserSearch:
    """The SearchUsers query handler over one index or alias."""

    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self._client = client
        self._index = index

    async def search_users(
        self, text: str, limit: int = 10, offset: int = 0, *, active_only: bool = False
    ) -> UserSearchResult:
        """Users matching `text` best first; deactivated ones included unless `active_only`."""
        body = build_search(text, limit=limit, offset=offset, active_only=active_only)
        try:
            response = await self._client.search(index=self._index, **body)
        except (ConnectionError, ConnectionTimeout) as error:
            raise SearchUnavailable(f"search failed: {error}") from error
        except ApiError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise SearchUnavailable(f"search answered {error.status_code}") from error
            raise
        hits = response.body["hits"]
        return UserSearchResult(
            total=hits["total"]["value"],
            hits=[_hit(hit) for hit in hits["hits"]],
        )


def _hit(hit: dict[str, Any]) -> UserHit:
    source = hit["_source"]
    return UserHit(
        id=source["user_id"],
        name=source["name"],
        email=source["email"],
        active=source["active"],
        version=source["version"],
        score=hit.get("_score"),
    )
