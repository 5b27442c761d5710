"""Fixtures shared by the integration tests.

`phone_stack` lives in phone_stack.py; the admin API client (`api`, `api_factory`) in
api_fixtures.py.
"""

from __future__ import annotations

from tests.integration.api_fixtures import api, api_factory
from tests.integration.phone_stack import phone_stack

__all__ = ["api", "api_factory", "phone_stack"]
