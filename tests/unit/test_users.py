"""User rules, as given events / when command / then events or rejection."""

import pytest

from pipeline.domain.testing import given
from pipeline.domain.users import (
    CreateUser,
    DeactivateUser,
    ReactivateUser,
    UpdateUser,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserNameChanged,
    UserReactivated,
)

CREATED = UserCreated(email="ada@example.com", name="Ada")


def test_create_normalises_email_and_name() -> None:
    given().when(CreateUser(email="  Ada@Example.COM ", name="  Ada ")).then(CREATED)


def test_no_second_create() -> None:
    given(CREATED).when(CreateUser(email="b@example.com", name="B")).then_rejected(
        "user.already_exists"
    )


def test_update_emits_only_changed_fields() -> None:
    given(CREATED).when(UpdateUser(email="ADA@example.com", name="Ada L")).then(
        UserNameChanged(name="Ada L")
    )
    given(CREATED).when(UpdateUser(email="new@example.com")).then(
        UserEmailChanged(email="new@example.com")
    )


def test_noop_update_emits_nothing() -> None:
    given(CREATED).when(UpdateUser(name="Ada")).then()
    given(CREATED).when(UpdateUser()).then()


@pytest.mark.parametrize("command", [UpdateUser(name="X"), DeactivateUser(), ReactivateUser()])
def test_missing_user(command: UpdateUser | DeactivateUser | ReactivateUser) -> None:
    given().when(command).then_rejected("user.not_found")


def test_deactivate_and_reactivate() -> None:
    given(CREATED).when(DeactivateUser(reason=" spam ")).then(UserDeactivated(reason="spam"))
    given(CREATED, UserDeactivated()).when(ReactivateUser()).then(UserReactivated())


def test_deactivated_user_cannot_be_updated_or_deactivated_again() -> None:
    deactivated = given(CREATED, UserDeactivated())
    deactivated.when(UpdateUser(name="X")).then_rejected("user.deactivated")
    deactivated.when(DeactivateUser()).then_rejected("user.already_deactivated")


def test_reactivate_only_when_deactivated() -> None:
    given(CREATED).when(ReactivateUser()).then_rejected("user.not_deactivated")
    given(CREATED, UserDeactivated(), UserReactivated()).when(ReactivateUser()).then_rejected(
        "user.not_deactivated"
    )
