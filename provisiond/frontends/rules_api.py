"""GET /api/v1/rules: the licence and feature dependency tables of provisiond.domain.rules.

The web console derives its cascades, disabled controls and licence hints from this answer
instead of keeping a copy of the rules. The route sits on the admin application, so the
admin middlewares (bearer token, errors, headers) apply to it as to every /api/ route.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from provisiond.frontends.admin_http import admin_expect_handler, json_response
from provisiond.frontends.api_models import Out
from provisiond.services import Services

RULES_PATH = "/api/v1/rules"


class LicenceSeatOut(Out):
    """A user with `feature` on takes one seat of licence `module`."""

    feature: str
    module: str


class DependencyOut(Out):
    """`field` needs `needs`; `kind` is switch, setting, value or parameter (see the rules)."""

    field: str
    needs: str
    kind: Literal["switch", "setting", "value", "parameter"]
    detail: str


class RulesOut(Out):
    """The rules as data: licence modules, which feature takes which, what needs what."""

    licence_modules: list[str]
    licences: list[LicenceSeatOut]
    dependencies: list[DependencyOut]


def add_rules_routes(app: web.Application, services: Services) -> None:
    """Register GET (and HEAD) /api/v1/rules on the admin application."""

    async def get_rules(request: web.Request) -> web.Response:
        """The licence and feature dependency tables."""
        answer = RulesOut.model_validate(services.platform.rules_table())
        return json_response(answer.model_dump())

    app.router.add_get(RULES_PATH, get_rules, expect_handler=admin_expect_handler)
