"""Use cases, one transaction each, shared by the admin API, the CLI and the web console.

`Services` is the one object the frontends hold; it is built in the composition root
(provisiond.app) from a `ServiceContext`.
"""

from __future__ import annotations

from provisiond.services.accounts import AccountService
from provisiond.services.assignments import AssignmentService
from provisiond.services.catalogue import CatalogueService
from provisiond.services.context import ServiceContext
from provisiond.services.devices import DeviceService
from provisiond.services.directory import DirectoryService
from provisiond.services.fleet import FleetService
from provisiond.services.keys import KeyService
from provisiond.services.platform import PlatformService
from provisiond.services.resync import ResyncService
from provisiond.services.sites import SiteService
from provisiond.services.tokens import Caller, TokenService
from provisiond.services.users import UserService

__all__ = ["Caller", "ServiceContext", "Services"]


class Services:
    """Every admin use case, grouped by subject."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.users = UserService(ctx)
        self.assignments = AssignmentService(ctx)
        self.devices = DeviceService(ctx)
        self.accounts = AccountService(ctx)
        self.keys = KeyService(ctx)
        self.platform = PlatformService(ctx)
        self.tokens = TokenService(ctx)
        self.catalogue = CatalogueService(ctx)
        self.directory = DirectoryService(ctx)
        self.sites = SiteService(ctx)
        self.resync = ResyncService(ctx)
        self.fleet = FleetService(ctx)
