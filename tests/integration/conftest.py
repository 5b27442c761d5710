"""Fixtures shared by the integration tests."""

from tests.integration.phone_stack import phone_stack

__all__ = ["phone_stack"]
