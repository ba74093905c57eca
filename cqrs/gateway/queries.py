"""The query routes: users, user search, statistics, orders, a user's orders.

`min_version` gives read-your-writes: the route polls the read model until the row reached that
version, for at most `wait` seconds, then answers 504 (the write is not lost, only not yet
projected). A read model that cannot be reached answers 503; a row that does not exist, 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from elasticsearch import NotFoundError
from fastapi import APIRouter, HTTPException, Path, Query, Request

from cqrs.gateway.compose import ReadSide
from projections.queries import (
    GetOrder,
    GetUser,
    GetUserStats,
    Order,
    OrdersForUser,
    QueryTimeout,
    User,
    UserOrders,
    UserStats,
    get_order,
    get_user,
    get_user_stats,
    orders_for_user,
)
from projections.runtime.errors import TransientError
from projections.search import InvalidSearch, SearchUnavailable, UserSearchResult
from projections.search.query import MAX_LIMIT, MAX_TEXT_LENGTH, MAX_WINDOW
from topics import limits

MAX_WAIT = 30.0
MAX_VERSION = limits.MAX_VERSION
"""Stream versions are PostgreSQL bigints (`topics.limits`)."""

router = APIRouter(tags=["queries"])

MinVersion = Annotated[int | None, Query(
    ge=0, le=MAX_VERSION,
    description="Wait until the projection has reached this version (read-your-writes).")]
RowId = Annotated[str, Path(
    min_length=1, max_length=limits.READ_MAX_AGGREGATE_ID_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$",
    description="An id as the command gave it (no control characters: none can be stored).")]
Wait = Annotated[float, Query(gt=0, le=MAX_WAIT, description="Bound of the min_version wait (s).")]
RowResponses: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not in the read model."},
    503: {"description": "The read model cannot be reached."},
    504: {"description": "The projection has not reached `min_version` within `wait`."},
}


def _read_side(request: Request) -> ReadSide:
    read: ReadSide = request.app.state.services.read
    return read


@asynccontextmanager
async def _answering(min_version: int | None = None) -> AsyncIterator[None]:
    """Map query faults to status codes, with a body saying what happened."""
    try:
        yield
    except QueryTimeout as error:
        raise HTTPException(504,
                            f"projection has not reached version {min_version} yet: {error}"
                            ) from None
    except (TransientError, SearchUnavailable) as error:
        raise HTTPException(503,
                            f"read model unavailable: {error}") from None
    except NotFoundError as error:
        raise HTTPException(503, f"search index missing (is `cqrs project search` running?): "
                            f"{error}") from None
    except InvalidSearch as error:
        raise HTTPException(422, str(error)) from None


@router.get("/users/{user_id}", response_model=User, responses=RowResponses,
            summary="GetUser")
async def user(request: Request, user_id: RowId,
               min_version: MinVersion = None, wait: Wait = 5.0) -> User:
    async with _answering(min_version):
        found = await get_user(_read_side(request).read_model,
                               GetUser(id=user_id, min_version=min_version, wait=wait))
    if found is None:
        raise HTTPException(404, f"user {user_id!r} not found")
    return found


@router.get("/users", response_model=UserSearchResult, summary="SearchUsers",
            responses={503: {"description": "Elasticsearch cannot be reached."}})
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=MAX_TEXT_LENGTH,
                            description="Name or email words; typos and prefixes match.")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_WINDOW - 1)] = 0,
    active_only: bool = False,
) -> UserSearchResult:
    async with _answering():
        return await _read_side(request).search.search_users(
            q, limit, offset, active_only=active_only)


@router.get("/users/{user_id}/orders", response_model=UserOrders, summary="OrdersForUser",
            responses={503: RowResponses[503]})
async def user_orders(request: Request, user_id: RowId) -> UserOrders:
    async with _answering():
        return await orders_for_user(_read_side(request).read_model,
                                     OrdersForUser(user_id=user_id))


@router.get("/stats/users", response_model=UserStats, summary="GetUserStats",
            responses={503: RowResponses[503]})
async def user_stats(request: Request) -> UserStats:
    async with _answering():
        return await get_user_stats(_read_side(request).read_model, GetUserStats())


@router.get("/orders/{order_id}", response_model=Order, responses=RowResponses,
            summary="GetOrder")
async def order(request: Request, order_id: RowId, min_version: MinVersion = None,
                wait: Wait = 5.0) -> Order:
    async with _answering(min_version):
        found = await get_order(_read_side(request).read_model,
                                GetOrder(id=order_id, min_version=min_version, wait=wait))
    if found is None:
        raise HTTPException(404, f"order {order_id!r} not found")
    return found
