"""Order rules, as given events / when command / then events or rejection."""

from datetime import UTC, datetime

import pytest

from pipeline.contracts import decide_command
from pipeline.domain.common import DecisionContext, check_expected_version
from pipeline.domain.orders import (
    CancelOrder,
    CreateOrder,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderPaid,
    OrderShipped,
    PayOrder,
    ShipOrder,
)
from pipeline.domain.testing import given

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
