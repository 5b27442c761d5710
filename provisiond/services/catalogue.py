"""Read-only lists: the model catalogue, unprovisioned devices and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from provisiond.services.context import ServiceContext, audit, clamp_page
from provisiond.services.views import audit_view, model_view, page, unprovisioned_view
from provisiond.storage.models import AuditEntry, DeviceModel, UnprovisionedDevice


class CatalogueService:
    """GET /models, /unprovisioned and /audit."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def models(
        self, vendor: str | None = None, series: str | None = None
    ) -> list[dict[str, Any]]:
        """The model catalogue, ordered by vendor and id."""
        query = select(DeviceModel).order_by(DeviceModel.vendor, DeviceModel.id)
        if vendor:
            query = query.where(DeviceModel.vendor == vendor)
        if series:
            query = query.where(DeviceModel.series == series)
        async with self.ctx.db.read() as session:
            return [model_view(m) for m in (await session.scalars(query)).all()]

    async def unprovisioned(
        self, limit: int | None = None, offset: int | None = None
    ) -> dict[str, Any]:
        """MACs that asked for a configuration, most recent first."""
        lim, off = clamp_page(limit, offset)
        async with self.ctx.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(UnprovisionedDevice)) or 0
            rows = (
                await session.scalars(
                    select(UnprovisionedDevice)
                    .order_by(UnprovisionedDevice.last_seen_at.desc())
                    .limit(lim)
                    .offset(off)
                )
            ).all()
            return page([unprovisioned_view(r) for r in rows], total, lim, off)

    async def record(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: object,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Audit an admin action on state that lives outside the database (e.g. a lifted ban)."""
        async with self.ctx.db.write() as session:
            audit(session, actor, action, object_type, object_id, before, after)

    async def audit(self, limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """The audit log, newest first."""
        lim, off = clamp_page(limit, offset)
        async with self.ctx.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            rows = (
                await session.scalars(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).limit(lim).offset(off)
                )
            ).all()
            return page([audit_view(r) for r in rows], total, lim, off)
