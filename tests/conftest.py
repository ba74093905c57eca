"""Fixtures shared by every test directory: `secure_stack` (the secure services, started once per
session by the first test that asks for them; `tests.support.secure`)."""

pytest_plugins = ["tests.support.secure"]
