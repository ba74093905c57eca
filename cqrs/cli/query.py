"""`cqrs get user|order`, `cqrs search`, `cqrs stats users`, `cqrs orders`: the query commands.

They call the query handlers (`projections.queries`) and `UserSearch` over the read side that
the invocation's `Bootstrap` opens (`open_read_side`; tests give it a fake one).

Exit codes: 0 found; 1 not found; 2 bad input; 3 timed out (min_version) or a service unavailable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from elasticsearch import NotFoundError
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from cqrs.cli.boot import bootstrap
from cqrs.gateway.compose import ReadSide
from projections import queries
from projections.runtime.errors import QueryTimeout, TransientError
from projections.search import InvalidSearch, SearchUnavailable

EXIT_NOT_FOUND, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3

get_app = typer.Typer(help="Read one user or order from the read models.", no_args_is_help=True)
stats_app = typer.Typer(help="Statistics from the read models.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
MinVersion = Annotated[int | None, typer.Option(
    min=0, help="Wait until the projection has reached this version (read-your-writes).")]
WaitOption = Annotated[float, typer.Option(min=0, help="Bound of the --min-version wait (s).")]

R = TypeVar("R")


def _run(ctx: typer.Context, work: Callable[[ReadSide], Awaitable[R]]) -> R:
    """Open the read side, run `work`, close; query faults become exit codes."""
    boot = bootstrap(ctx, "client")

    async def main() -> R:
        read = await boot.open_read_side()
        try:
            return await work(read)
        finally:
            await read.close()
    try:
        return asyncio.run(main())
    except QueryTimeout as error:
        _fail(f"error: {error}", "the projector may be behind or stopped: "
              "is `cqrs project postgres` running?", EXIT_UNAVAILABLE)
    except (TransientError, SearchUnavailable) as error:
        _fail(f"error: {error}", "check CQRS_PG_DSN / CQRS_ES_URL and that the services run "
              "(`cqrs services status`)", EXIT_UNAVAILABLE)
    except NotFoundError as error:
        _fail(f"error: the users search index does not exist: {error}",
              "run `cqrs project search` (with the same CQRS_TOPIC_PREFIX) first", EXIT_UNAVAILABLE)
    except InvalidSearch as error:
        _fail(f"error: {error}", "see `cqrs search --help`", EXIT_INVALID)


def _fail(message: str, hint: str, code: int) -> NoReturn:
    typer.echo(message, err=True)
    typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(code)


def _print_json(model: BaseModel) -> None:
    typer.echo(json.dumps(model.model_dump(mode="json"), separators=(",", ":")))


def _print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    Console().print(table)


def _print_record(title: str, model: BaseModel) -> None:
    _print_table(title, ["field", "value"], [[k, v] for k, v in model.model_dump().items()])


@get_app.command("user")
def get_user(ctx: typer.Context, user_id: Annotated[str, typer.Argument(metavar="ID")],
             min_version: MinVersion = None, wait: WaitOption = 5.0,
             as_json: JsonOption = False) -> None:
    """One user from the users read model. Exit 1 when absent."""
    query = queries.GetUser(id=user_id, min_version=min_version, wait=wait)
    found = _run(ctx, lambda read: queries.get_user(read.read_model, query))
    if found is None:
        _fail(f"error: user {user_id!r} not found", "ids are case-sensitive; try "
              "`cqrs search TEXT` to find one", EXIT_NOT_FOUND)
    _print_json(found) if as_json else _print_record(f"user {user_id}", found)


@get_app.command("order")
def get_order(ctx: typer.Context, order_id: Annotated[str, typer.Argument(metavar="ID")],
              min_version: MinVersion = None, wait: WaitOption = 5.0,
              as_json: JsonOption = False) -> None:
    """One order from the orders read model. Exit 1 when absent."""
    query = queries.GetOrder(id=order_id, min_version=min_version, wait=wait)
    found = _run(ctx, lambda read: queries.get_order(read.read_model, query))
    if found is None:
        _fail(f"error: order {order_id!r} not found", "list a user's orders with "
              "`cqrs orders --user ID`", EXIT_NOT_FOUND)
    _print_json(found) if as_json else _print_record(f"order {order_id}", found)


def search(ctx: typer.Context,
           text: Annotated[str, typer.Argument(help="Name or email words (typos and prefixes "
                                                    "match); '' lists everyone.")],
           limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
           offset: Annotated[int, typer.Option(min=0)] = 0,
           active_only: Annotated[bool, typer.Option("--active-only")] = False,
           as_json: JsonOption = False) -> None:
    """Search users by name and email, best match first."""
    result = _run(ctx, lambda read: read.search.search_users(text, limit, offset,
                                                        active_only=active_only))
    if as_json:
        _print_json(result)
        return
    rows = [[hit.id, hit.name, hit.email, "yes" if hit.active else "no", hit.version,
             f"{hit.score:.2f}" if hit.score is not None else ""] for hit in result.hits]
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    _print_table(f"users matching {text!r}: {shown} of {result.total}",
                 ["id", "name", "email", "active", "version", "score"], rows)


@stats_app.command("users")
def stats_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Users in total, active, new today and new this week (UTC)."""
    stats = _run(ctx, lambda read: queries.get_user_stats(read.read_model, queries.GetUserStats()))
    _print_json(stats) if as_json else _print_record("user statistics", stats)


def orders(ctx: typer.Context,
           user_id: Annotated[str, typer.Option("--user", help="The user's id.")],
           as_json: JsonOption = False) -> None:
    """A user's orders, newest first, and money spent per currency (paid and shipped)."""
    query = queries.OrdersForUser(user_id=user_id)
    found = _run(ctx, lambda read: queries.orders_for_user(read.read_model, query))
    if as_json:
        _print_json(found)
        return
    spent = ", ".join(f"{amount} {currency}" for currency, amount in found.spent.items())
    rows = [[o.id, o.status, o.total, o.currency, len(o.items), o.version, o.created_at]
            for o in found.orders]
    _print_table(f"orders of {user_id}: {found.order_count}; spent {spent or 'nothing'} "
                 "(minor units)",
                 ["id", "status", "total", "currency", "items", "version", "created"], rows)
