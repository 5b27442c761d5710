"""Sites: the networks phones provision from, and the policy for their per-device files.

A site's networks are CIDRs (IPv4 and IPv6, parsed by netaddr); its policy is `open`,
`digest` or `certificate` (provisiond.domain.policy says what each demands). With
`lock_on_first_boot`, a device is bound to the site that first provisioned it; an admin
releases the binding with `release_lock`.
"""

from __future__ import annotations

from typing import Annotated, Any

import netaddr
from pydantic import Field, StrictBool, StrictStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, InvalidInput, NotFound
from provisiond.domain.policy import POLICIES
from provisiond.services.assignments import load_device
from provisiond.services.commands import Command
from provisiond.services.context import MAX_ID, ServiceContext, audit
from provisiond.services.views import device_view
from provisiond.storage.models import Device, Site

MAX_NETWORKS = 256


class SiteCreate(Command):
    """Create a site."""

    name: StrictStr
    networks: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_NETWORKS)]
    policy: StrictStr = "open"
    lock_on_first_boot: StrictBool = False


class SitePatch(Command):
    """Change a site; only the fields present are touched."""

    name: StrictStr | None = None
    networks: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_NETWORKS)] | None = None
    policy: StrictStr | None = None
    lock_on_first_boot: StrictBool | None = None


def check_networks(networks: list[str]) -> list[str]:
    """Each entry a CIDR or address, IPv4 or IPv6; returned in canonical CIDR form."""
    canonical = []
    for index, text in enumerate(networks):
        try:
            canonical.append(str(netaddr.IPNetwork(text.strip(), flags=netaddr.NOHOST).cidr))
        except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
            raise InvalidInput(
                f"networks[{index}]: {text!r} is not an IPv4/IPv6 network such as 10.1.0.0/16",
                field=f"networks.{index}",
            ) from exc
    return canonical


def check_policy(policy: str) -> str:
    """One of the known policies."""
    if policy not in POLICIES:
        raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}", field="policy")
    return policy


def site_view(site: Site) -> dict[str, Any]:
    """A site as the API shows it."""
    return {
        "id": site.id,
        "name": site.name,
        "networks": site.networks,
        "policy": site.policy,
        "lock_on_first_boot": site.lock_on_first_boot,
    }


async def load_site(session: AsyncSession, site_id: int) -> Site:
    """A site by id, or NotFound."""
    site = await session.get(Site, site_id) if 0 < site_id <= MAX_ID else None
    if site is None:
        raise NotFound(f"site {site_id} does not exist", field="site_id")
    return site


class SiteService:
    """GET/POST /sites, GET/PATCH/DELETE /sites/{id}, POST /devices/{id}/release-lock."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self) -> list[dict[str, Any]]:
        """Every site, by name."""
        async with self.ctx.db.read() as session:
            return [site_view(s) for s in (await session.scalars(select(Site).order_by(Site.name)))]

    async def get(self, site_id: int) -> dict[str, Any]:
        """One site."""
        async with self.ctx.db.read() as session:
            site = await load_site(session, site_id)
            return site_view(site)

    async def create(self, cmd: SiteCreate, actor: str) -> dict[str, Any]:
        """Create a site."""
        name = rules.check_text(cmd.name, "name", max_len=64, allow_empty=False)
        async with self.ctx.db.write() as session:
            if await session.scalar(select(Site.id).where(Site.name == name)):
                raise Conflict(f"a site named {name!r} exists", field="name")
            site = Site(
                name=name,
                networks=check_networks(cmd.networks),
                policy=check_policy(cmd.policy),
                lock_on_first_boot=cmd.lock_on_first_boot,
            )
            session.add(site)
            await session.flush()
            view = site_view(site)
            audit(session, actor, "site.create", "site", site.id, None, view)
        return view

    async def update(self, site_id: int, patch: SitePatch, actor: str) -> dict[str, Any]:
        """Change a site."""
        sent = patch.model_fields_set
        async with self.ctx.db.write() as session:
            site = await load_site(session, site_id)
            before = site_view(site)
            if "name" in sent:
                name = rules.check_text(patch.name, "name", max_len=64, allow_empty=False)
                other = await session.scalar(select(Site.id).where(Site.name == name))
                if other is not None and other != site_id:
                    raise Conflict(f"a site named {name!r} exists", field="name")
                site.name = name
            if "networks" in sent:
                site.networks = check_networks(patch.networks or [])
            if "policy" in sent:
                site.policy = check_policy(patch.policy or "")
            if "lock_on_first_boot" in sent and patch.lock_on_first_boot is not None:
                site.lock_on_first_boot = patch.lock_on_first_boot
            await session.flush()
            after = site_view(site)
            audit(session, actor, "site.update", "site", site_id, before, after)
        return after

    async def delete(self, site_id: int, actor: str) -> None:
        """Delete a site; devices locked to it are released."""
        async with self.ctx.db.write() as session:
            site = await load_site(session, site_id)
            before = site_view(site)
            await session.execute(
                update(Device).where(Device.site_id == site_id).values(site_id=None)
            )
            await session.delete(site)
            audit(session, actor, "site.delete", "site", site_id, before, None)

    async def release_lock(self, device_id: int, actor: str) -> dict[str, Any]:
        """Let a device locked on first boot provision from another site again."""
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            before = {"site_id": device.site_id}
            device.site_id = None
            await session.flush()
            audit(
                session,
                actor,
                "device.release_lock",
                "device",
                device_id,
                before,
                {"site_id": None},
            )
            return device_view(device)
