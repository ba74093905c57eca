"""User rules, as given events / when command / then events or rejection."""

import pytest
from hypothesis import given as given_hypothesis
from hypothesis import strategies as st

from pipeline.domain.aggregates import decide_command
from pipeline.domain.common import DecisionContext, Rejection
from pipeline.domain.testing import FIXED_NOW, given
from topics import (
    CreateUser,
    DeactivateUser,
    ForgetUser,
    ReactivateUser,
    UpdateUser,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
    limits,
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


# -- Limits: control characters and lengths (see topics.limits) ----------------------------------

CONTEXT = DecisionContext(now=FIXED_NOW)


def rejection_code(command_type: str, data: dict[str, object]) -> str | None:
    decision = decide_command(command_type, None, data, CONTEXT)
    return decision.code if isinstance(decision, Rejection) else None


@pytest.mark.parametrize("bad", ["\x00", "\x1f", "\x7f", "\x9f", "\ud800", "\n", "\t", "\u0085"])
def test_names_with_control_characters_are_refused(bad: str) -> None:
    name = f"Ada{bad}Lovelace"
    assert rejection_code("CreateUser", {"email": "a@example.com", "name": name}) == (
        "validation.control_character"
    )
    assert rejection_code("UpdateUser", {"name": name}) == "validation.control_character"


def test_a_deactivation_reason_with_a_nul_is_refused() -> None:
    assert rejection_code("DeactivateUser", {"reason": "bye\x00"}) == (
        "validation.control_character"
    )


def test_a_name_of_exactly_the_limit_is_accepted_one_more_is_not() -> None:
    longest = "\U0001f600" * limits.MAX_NAME_LENGTH  # characters, not bytes
    given().when(CreateUser(email="a@example.com", name=longest)).then(
        UserCreated(email="a@example.com", name=longest)
    )
    assert rejection_code("CreateUser", {"email": "a@example.com", "name": longest + "x"}) == (
        "validation.invalid_name"
    )


@given_hypothesis(
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=limits.MAX_NAME_LENGTH)
)
def test_any_name_without_control_characters_is_accepted_once_trimmed(name: str) -> None:
    code = rejection_code("CreateUser", {"email": "a@example.com", "name": name})
    assert code == (None if name.strip() else "validation.invalid_name")


@given_hypothesis(st.text(), st.characters(categories=("Cc", "Cs")), st.text())
def test_any_name_with_an_inner_control_character_is_refused(
    before: str, control: str, after: str
) -> None:
    name = f"a{before}{control}{after}z"
    code = rejection_code("CreateUser", {"email": "a@example.com", "name": name})
    assert code == "validation.control_character"


FORGOTTEN = UserForgotten(reason="art. 17", requested_by="dpo")


def test_forget_an_active_or_deactivated_user() -> None:
    forget = ForgetUser(reason="art. 17", requested_by="dpo")
    given(CREATED).when(forget).then(FORGOTTEN)
    given(CREATED, UserDeactivated()).when(forget).then(FORGOTTEN)
    given().when(forget).then_rejected("user.not_found")


@pytest.mark.parametrize("command", [
    CreateUser(email="ada@example.com", name="Ada"), UpdateUser(name="X"), DeactivateUser(),
    ReactivateUser(), ForgetUser(reason="again", requested_by="dpo")])
def test_a_forgotten_user_refuses_everything(
    command: CreateUser | UpdateUser | DeactivateUser | ReactivateUser | ForgetUser,
) -> None:
    given(CREATED, FORGOTTEN).when(command).then_rejected("user.forgotten")
