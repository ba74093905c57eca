"""The seed's scenario, with the seed's values: Alice Smith, Bob Johnson and Charlie Brown created,
found, searched, Alice updated, counted, a duplicate rejected, orders paid; then what the seed
lacks: a deactivation the process managers compensate, and an erasure.

Each step checks its answer and says what it saw. Names and emails are the seed's; only the user
and order ids carry a per-run suffix, since a stream id can be created once (an erased one is
never reused), so the scenario can be played again on the same pipeline. Statistics are compared
before and after the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.client import CommandClient, new_command
from projections.postgres.models import UserOrders, UserStats
from projections.queries import (
    GetOrder,
    GetUser,
    GetUserStats,
    OrdersForUser,
    ReadModel,
    get_order,
    get_user,
    get_user_stats,
    orders_for_user,
)
from projections.search import UserSearch, UserSearchResult
from topics import CommandResult

RESULT_TIMEOUT = 60.0
PROJECTION_WAIT = 60.0
T = TypeVar("T")
USERS = (("alice", "Alice Smith"), ("bob", "Bob Johnson"), ("charlie", "Charlie Brown"))
ALICE_UPDATED = ("alice.smith@newcompany.com", "Alice Smith-Jones")


@dataclass
class Step:
    title: str
    ok: bool
    detail: str


@dataclass
class Scenario:
    """Plays the steps in order against a command client, the read model and the search index."""

    client: CommandClient
    read_model: ReadModel
    search: UserSearch
    run: str
    report: Callable[[Step], None]
    steps: list[Step] = field(default_factory=list)

    def user_id(self, who: str) -> str:
        return f"{who}-{self.run}"

    def _check(self, title: str, ok: bool, detail: str) -> None:
        step = Step(title, ok, detail)
        self.steps.append(step)
        self.report(step)
        if not ok:
            raise ScenarioFailed(title)

    async def _send(self, type_: str, aggregate_id: str, **data: Any) -> CommandResult:
        command = new_command(type_, aggregate_id, data)
        return await asyncio.to_thread(self.client.send_and_wait, command, RESULT_TIMEOUT)

    async def play(self) -> None:
        before = await get_user_stats(self.read_model, GetUserStats())
        await self._create_users()
        await self._get_alice()
        await self._search_alice()
        await self._update_alice()
        await self._statistics(before)
        await self._duplicate_create()
        await self._orders()
        await self._compensation()
        await self._forget_bob()

    async def _create_users(self) -> None:
        for who, name in USERS:
            email = f"{who}@example.com"
            result = await self._send("CreateUser", self.user_id(who), email=email, name=name)
            self._check(f"create user {name}", result.status == "accepted" and result.version == 1,
                        f"{result.status}, {result.stream_id} version {result.version}")

    async def _get_alice(self) -> None:
        query = GetUser(id=self.user_id("alice"), min_version=1, wait=PROJECTION_WAIT)
        user = await get_user(self.read_model, query)
        self._check("get user Alice", user is not None and user.name == "Alice Smith",
                    f"{user.name} <{user.email}> active={user.active} v{user.version}"
                    if user else "not found")

    async def _search_alice(self, name: str = "Alice Smith", title: str = 'search "alice"'
                            ) -> None:
        """This run's Alice among the hits for "alice", under `name` (earlier runs' Alices may
        be there too: the seed's names are the same in every run)."""
        wanted = self.user_id("alice")

        def found_her(result: UserSearchResult) -> bool:
            return any(h.id == wanted and h.name == name for h in result.hits)

        hits = await _eventually(lambda: self.search.search_users("alice", limit=100), found_her)
        mine = next((h for h in hits.hits if h.id == wanted), None)
        self._check(title, found_her(hits),
                    f"{hits.total} hit(s); this run's: {mine.name} <{mine.email}> "
                    f"({mine.score:.1f})" if mine else f"{hits.total} hit(s), not this run's")

    async def _update_alice(self) -> None:
        email, name = ALICE_UPDATED
        result = await self._send("UpdateUser", self.user_id("alice"), email=email, name=name)
        self._check("update Alice's email and name", result.status == "accepted"
                    and result.version == 3,
                    f"{result.status}, {len(result.event_ids)} events, now version "
                    f"{result.version}")
        user = await get_user(self.read_model, GetUser(id=self.user_id("alice"), min_version=3,
                                                       wait=PROJECTION_WAIT))
        self._check("read Alice's new version", user is not None and user.email == email
                    and user.name == name,
                    f"{user.name} <{user.email}> v{user.version}" if user else "not found")
        await self._search_alice(name, 'search "alice" after the update')

    async def _statistics(self, before: UserStats) -> None:
        """This run's three users are counted (other writers may add more meanwhile)."""
        after = await get_user_stats(self.read_model, GetUserStats())
        grew = min(after.total - before.total, after.active - before.active,
                   after.new_today - before.new_today)
        self._check("user statistics", grew >= 3 and after.active <= after.total,
                    f"total {after.total}, active {after.active}, new today {after.new_today}, "
                    f"new this week {after.new_this_week} (+{after.total - before.total} "
                    "during this run, 3 of them its own)")

    async def _duplicate_create(self) -> None:
        result = await self._send("CreateUser", self.user_id("alice"),
                                  email="alice@example.com", name="Alice Smith")
        self._check("create an existing user is rejected",
                    result.status == "rejected" and result.code == "user.already_exists",
                    f"{result.status}: {result.code}: {result.reason}")

    async def _orders(self) -> None:
        plan = {
            "alice": [[("book", 2, 1250), ("pen", 1, 500)], [("mug", 1, 899)]],
            "bob": [[("lamp", 1, 1999)]],
        }
        paid: dict[str, int] = {}
        for who, orders in plan.items():
            for index, items in enumerate(orders):
                order_id = f"o-{who}-{index}-{self.run}"
                lines = [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in items]
                created = await self._send("CreateOrder", order_id, currency="EUR",
                                           customer_id=self.user_id(who), items=lines)
                total = sum(q * p for _, q, p in items)
                self._check(f"place order {order_id}", created.status == "accepted",
                            f"{created.status}, total {total / 100:.2f} EUR"
                            + (f" ({created.code})" if created.code else ""))
                if index == 0:
                    payment = await self._send("PayOrder", order_id, payment_ref=f"pay-{order_id}",
                                               amount=total)
                    self._check(f"pay order {order_id}", payment.status == "accepted",
                                f"{payment.status}, version {payment.version}")
                    paid[who] = total
                    await get_order(self.read_model, GetOrder(id=order_id, min_version=2,
                                                              wait=PROJECTION_WAIT))
        await self._orders_per_user(plan, paid)

    async def _compensation(self) -> None:
        """Charlie orders, does not pay, and is deactivated: the process manager cancels the
        open order (a `CancelOrder` with a deterministic id, reason `customer.deactivated`)."""
        order_id = f"o-charlie-0-{self.run}"
        lines = [{"sku": "kite", "quantity": 1, "unit_price": 2500}]
        created = await self._send("CreateOrder", order_id, currency="EUR",
                                   customer_id=self.user_id("charlie"), items=lines)
        self._check(f"place order {order_id} (not paid)", created.status == "accepted",
                    f"{created.status}, total 25.00 EUR")
        deactivated = await self._send("DeactivateUser", self.user_id("charlie"),
                                       reason="account closed")
        self._check("deactivate Charlie", deactivated.status == "accepted",
                    f"{deactivated.status}, version {deactivated.version}")
        order = await _eventually(
            lambda: self.read_model.order(order_id),
            lambda found: found is not None and found.status == "cancelled")
        self._check("the process manager cancels Charlie's open order",
                    order is not None and order.status == "cancelled",
                    f"{order_id}: {order.status}, version {order.version}" if order
                    else f"{order_id} not found")

    async def _forget_bob(self) -> None:
        """Bob asks to be forgotten: his row and document go, the statistics drop him, his paid
        order keeps its money and loses him, and his id is never usable again."""
        bob = self.user_id("bob")
        before = await get_user_stats(self.read_model, GetUserStats())
        result = await self._send("ForgetUser", bob, reason="GDPR art. 17 request",
                                  requested_by="demo")
        self._check("forget Bob", result.status == "accepted",
                    f"{result.status}, version {result.version}: earlier events tombstoned")
        gone = await _eventually(lambda: self.read_model.user(bob), lambda user: user is None)
        hits = await _eventually(lambda: self.search.search_users("bob johnson", limit=100),
                                 lambda found: all(h.id != bob for h in found.hits))
        self._check("Bob is gone from PostgreSQL and the search index",
                    gone is None and all(h.id != bob for h in hits.hits),
                    "no row, no document")
        after = await get_user_stats(self.read_model, GetUserStats())
        self._check("statistics after the forget", after.total - before.total <= -1,
                    f"total {before.total} -> {after.total}")
        order = await self.read_model.order(f"o-bob-0-{self.run}")
        self._check("Bob's paid order keeps its money, not its customer",
                    order is not None and order.customer_id is None and order.status == "paid",
                    f"{order.id}: {order.status}, {order.total / 100:.2f} {order.currency}, "
                    f"customer {order.customer_id}" if order else "not found")
        again = await self._send("CreateUser", bob, email="bob@example.com", name="Bob Johnson")
        self._check("Bob's id cannot be used again",
                    again.status == "rejected" and again.code == "user.forgotten",
                    f"{again.status}: {again.code}")

    async def _orders_per_user(self, plan: dict[str, list[Any]], paid: dict[str, int]) -> None:
        for who, orders in plan.items():
            query = OrdersForUser(user_id=self.user_id(who))

            async def read(query: OrdersForUser = query) -> UserOrders:
                return await orders_for_user(self.read_model, query)

            def complete(found: UserOrders, count: int = len(orders)) -> bool:
                return found.order_count == count

            summary = await _eventually(read, complete)
            spent = summary.spent.get("EUR", 0)
            self._check(f"orders of {who}",
                        summary.order_count == len(orders) and spent == paid[who],
                        f"{summary.order_count} order(s), spent {spent / 100:.2f} EUR")


class ScenarioFailed(Exception):
    """A step did not give the expected answer (the step's report says what it saw)."""


async def _eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool],
                         timeout: float = PROJECTION_WAIT) -> T:
    """Poll `read` until `done` holds or `timeout` passes; returns the last answer either way."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await read()
        if done(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.25)
