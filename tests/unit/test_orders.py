"""Order rules, as given events / when command / then events or rejection."""

from datetime import UTC, datetime

import pytest
from hypothesis import given as given_hypothesis
from hypothesis import strategies as st

from pipeline.domain import orders
from pipeline.domain.aggregates import decide_command
from pipeline.domain.common import DecisionContext, Rejection, check_expected_version
from pipeline.domain.orders import decide
from pipeline.domain.testing import FIXED_NOW, given
from topics import (
    CancelOrder,
    CreateOrder,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderPaid,
    OrderShipped,
    PayOrder,
    ShipOrder,
    limits,
)

ITEMS = (
    OrderItem(sku="A", quantity=2, unit_price=150),
    OrderItem(sku="B", quantity=1, unit_price=99),
)
CREATE = CreateOrder(customer_id="u1", items=ITEMS, currency="EUR")
CREATED = OrderCreated(customer_id="u1", items=ITEMS, currency="EUR", total=399)
PAID = OrderPaid(amount=399, payment_ref="pay-1")
SHIPPED = OrderShipped(tracking="T1")
CANCELLED = OrderCancelled(reason="changed mind")


def test_create_computes_the_total() -> None:
    given().with_customer("u1").when(CREATE).then(CREATED)


def test_customer_must_exist_and_be_active() -> None:
    given().when(CREATE).then_rejected("order.unknown_customer")
    given().with_customer("u1", "deactivated").when(CREATE).then_rejected("order.customer_inactive")


def test_no_second_create() -> None:
    given(CREATED).with_customer("u1").when(CREATE).then_rejected("order.already_exists")


def test_pay_with_and_without_amount() -> None:
    given(CREATED).when(PayOrder(payment_ref="pay-1")).then(PAID)
    given(CREATED).when(PayOrder(payment_ref="pay-1", amount=399)).then(PAID)
    given(CREATED).when(PayOrder(payment_ref="pay-1", amount=400)).then_rejected(
        "order.amount_mismatch"
    )
    given(CREATED, PAID).when(PayOrder(payment_ref="pay-2")).then_rejected("order.already_paid")


def test_ship_only_after_payment_and_once() -> None:
    given(CREATED).when(ShipOrder()).then_rejected("order.not_paid")
    given(CREATED, PAID).when(ShipOrder(tracking="T1")).then(SHIPPED)
    given(CREATED, PAID, SHIPPED).when(ShipOrder()).then_rejected("order.already_shipped")


def test_cancel_only_before_shipping() -> None:
    given(CREATED).when(CancelOrder(reason="changed mind")).then(CANCELLED)
    given(CREATED, PAID).when(CancelOrder(reason="changed mind")).then(CANCELLED)
    given(CREATED, PAID, SHIPPED).when(CancelOrder(reason="x")).then_rejected(
        "order.already_shipped"
    )


@pytest.mark.parametrize(
    "command", [PayOrder(payment_ref="p"), ShipOrder(), CancelOrder(reason="again")]
)
def test_nothing_after_cancellation(command: PayOrder | ShipOrder | CancelOrder) -> None:
    given(CREATED, CANCELLED).when(command).then_rejected("order.cancelled")


def test_missing_order() -> None:
    given().when(PayOrder(payment_ref="p")).then_rejected("order.not_found")


CONTEXT = DecisionContext(now=datetime(2024, 1, 1, tzinfo=UTC), customer_status=lambda _: "active")
GOOD = {
    "customer_id": "u1",
    "items": [{"sku": "A", "quantity": 1, "unit_price": 5}],
    "currency": "EUR",
}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"items": []}, "validation.no_items"),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": 5}]}, "validation.greater_than"),
        (
            {"items": [{"sku": "A", "quantity": 1, "unit_price": -1}]},
            "validation.greater_than_equal",
        ),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": 1.5}]}, "validation.int_type"),
        ({"currency": "euro"}, "validation.invalid_currency"),
        ({"total": 1}, "validation.extra_forbidden"),
    ],
)
def test_invalid_create_data(change: dict[str, object], code: str) -> None:
    decision = decide_command("CreateOrder", None, {**GOOD, **change}, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == code


def test_validation_reasons_are_readable() -> None:
    decision = decide_command("CreateUser", None, {"email": "nope", "name": " "}, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == "validation.invalid_email"
    assert "email: not a valid email address" in decision.reason
    assert "name: the name is empty" in decision.reason


def test_unknown_command_type() -> None:
    decision = decide_command("LaunchRocket", None, {}, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == "command.unknown_type"


def test_expected_version() -> None:
    assert check_expected_version(3, None) is None
    assert check_expected_version(3, 3) is None
    conflict = check_expected_version(3, 2)
    assert conflict is not None
    assert conflict.code == "concurrency.version_conflict"
    assert "version 3" in conflict.reason


# -- Limits: the total fits the read model, text has no control characters ----------------------

EXACT = [  # 9007 * 10^12 + 199254740991 == 2^53 - 1 == MAX_ORDER_TOTAL
    {"sku": "A", "quantity": 9007, "unit_price": limits.MAX_UNIT_PRICE},
    {"sku": "B", "quantity": 1, "unit_price": 199_254_740_991},
]


def test_a_total_of_exactly_the_limit_is_accepted_and_payable() -> None:
    decision = decide_command("CreateOrder", None, {**GOOD, "items": EXACT}, CONTEXT)
    assert isinstance(decision, list)
    created = decision[0]
    assert isinstance(created, OrderCreated)
    assert created.total == limits.MAX_ORDER_TOTAL == 2**53 - 1
    # An explicit amount that large used to be refused (amounts were bounded like unit prices).
    given(created).when(PayOrder(payment_ref="p", amount=limits.MAX_ORDER_TOTAL)).then(
        OrderPaid(amount=limits.MAX_ORDER_TOTAL, payment_ref="p")
    )


@pytest.mark.parametrize(
    "items",
    [
        [*EXACT, {"sku": "C", "quantity": 1, "unit_price": 1}],
        [{"sku": f"s{i}", "quantity": limits.MAX_QUANTITY, "unit_price": limits.MAX_UNIT_PRICE}
         for i in range(limits.MAX_ITEMS)],  # 10^20: beyond even PostgreSQL's bigint
    ],
)
def test_a_total_beyond_the_limit_is_refused_as_validation(items: list[object]) -> None:
    decision = decide_command("CreateOrder", None, {**GOOD, "items": items}, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == "validation.total_too_large"
    assert "items" in decision.reason
    assert str(limits.MAX_ORDER_TOTAL) in decision.reason


def test_an_amount_beyond_the_limit_is_refused() -> None:
    decision = decide_command(
        "PayOrder", None, {"payment_ref": "p", "amount": limits.MAX_ORDER_TOTAL + 1}, CONTEXT
    )
    assert not isinstance(decision, list)
    assert decision.code == "validation.less_than_equal"


@given_hypothesis(
    st.lists(
        st.tuples(st.integers(1, limits.MAX_QUANTITY), st.integers(0, limits.MAX_UNIT_PRICE)),
        min_size=1, max_size=limits.MAX_ITEMS,
    )
)
def test_an_order_is_accepted_exactly_when_its_total_fits(lines: list[tuple[int, int]]) -> None:
    items = [{"sku": f"s{i}", "quantity": q, "unit_price": p} for i, (q, p) in enumerate(lines)]
    decision = decide_command("CreateOrder", None, {**GOOD, "items": items}, CONTEXT)
    total = sum(q * p for q, p in lines)
    if total <= limits.MAX_ORDER_TOTAL:
        assert isinstance(decision, list)
        assert decision[0] == OrderCreated(
            customer_id="u1", items=tuple(OrderItem(**item) for item in items),
            currency="EUR", total=total,
        )
    else:
        assert not isinstance(decision, list)
        assert decision.code == "validation.total_too_large"


@pytest.mark.parametrize(
    ("command_type", "data"),
    [
        ("PayOrder", {"payment_ref": "pay\x00-1"}),
        ("ShipOrder", {"tracking": "T\r\n1"}),
        ("CancelOrder", {"reason": "\x1b[31mred"}),
        ("CancelOrder", {"reason": "half \ud83d"}),
    ],
)
def test_order_text_with_control_characters_is_refused(
    command_type: str, data: dict[str, object]
) -> None:
    decision = decide_command(command_type, None, data, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == "validation.control_character"


PATTERN_MISMATCH = "validation.string_pattern_mismatch"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"customer_id": "u" * (limits.MAX_AGGREGATE_ID_LENGTH + 1)}, PATTERN_MISMATCH),
        ({"customer_id": "u\x00"}, PATTERN_MISMATCH),
        ({"items": [{"sku": "A\x00", "quantity": 1, "unit_price": 1}]},
         PATTERN_MISMATCH),
        ({"currency": "E\x00R"}, "validation.invalid_currency"),
    ],
)
def test_closed_charset_fields_keep_their_codes(change: dict[str, object], code: str) -> None:
    decision = decide_command("CreateOrder", None, {**GOOD, **change}, CONTEXT)
    assert not isinstance(decision, list)
    assert decision.code == code


def test_a_customer_id_of_exactly_the_limit_is_accepted() -> None:
    customer = "u" * limits.MAX_AGGREGATE_ID_LENGTH
    decision = decide_command("CreateOrder", None, {**GOOD, "customer_id": customer}, CONTEXT)
    assert isinstance(decision, list)


def test_a_late_order_compensation_is_refused_for_a_customer_active_again() -> None:
    """The late-order manager's cancel (`customer.inactive`) holds only while the customer is
    inactive as the processor knows it; any other cancel does not ask."""
    active = DecisionContext(now=FIXED_NOW, customer_status=lambda _: "active")
    late = CancelOrder(reason="customer.inactive")
    assert decide(orders.evolve(None, CREATED), late, active) == Rejection(
        code="order.customer_active",
        reason="user 'u1' is active: not cancelled for customer.inactive")
    gone = DecisionContext(now=FIXED_NOW, customer_status=lambda _: "deactivated")
    assert decide(orders.evolve(None, CREATED), late, gone) == [
        OrderCancelled(reason="customer.inactive")]
    assert decide(orders.evolve(None, CREATED), CancelOrder(reason="customer.deactivated"),
                  active) == [OrderCancelled(reason="customer.deactivated")]
