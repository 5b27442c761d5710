"""Write the model catalogue (phone_templates/<vendor>/models.toml) to the database.

Start-up (`provisiond.app.prepare_database`) and `provisiond db upgrade` call `sync_catalogue`
with what `provisiond.provisioning.catalogue.load_catalogue` read: new models are inserted,
changed ones updated, and a model that left the catalogue is deleted unless a device still
uses it; then it stays with `in_catalogue` false, so no device ever loses its model. One
transaction under the admin write lock, with one audit row when anything changed (other
instances' directories re-read the models on it); a second instance starting at the same time
finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain.catalogue import CatalogueModel
from provisiond.services.context import audit
from provisiond.storage.database import Database
from provisiond.storage.models import Device, DeviceModel

__all__ = ["CatalogueSync", "model_row", "sync_catalogue"]


@dataclass(frozen=True, slots=True)
class CatalogueSync:
    """What a sync changed, by model id."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    retired: tuple[str, ...]  # left the catalogue, kept because devices use them

    @property
    def changed(self) -> bool:
        """Whether the database differs from before."""
        return bool(self.added or self.updated or self.removed or self.retired)


def model_row(model: CatalogueModel) -> dict[str, Any]:
    """The device_models columns of a catalogue model."""
    return {
        "id": model.id,
        "vendor": model.vendor,
        "name": model.name,
        "family": model.family,
        "series": model.series,
        "boot": list(model.boot),
        "protocols": list(model.protocols),
        "auth": list(model.auth),
        "accounts": model.accounts,
        "line_keys": model.line_keys,
        "expansion_modules": model.expansion_modules,
        "module_keys": model.module_keys,
        "handsets": model.handsets,
        "user_agent": model.user_agent,
        "dect": model.dect,
        "ata": model.ata,
        "in_catalogue": True,
    }


async def _plan(
    session: AsyncSession, wanted: dict[str, dict[str, Any]], apply: bool
) -> CatalogueSync:
    """What the sync changes; with `apply`, make the changes in `session` too."""
    stored = {row.id: row for row in (await session.scalars(select(DeviceModel))).all()}
    added, updated = [], []
    for model_id, values in wanted.items():
        row = stored.get(model_id)
        if row is None:
            added.append(model_id)
            if apply:
                session.add(DeviceModel(**values))
        elif any(getattr(row, key) != value for key, value in values.items()):
            updated.append(model_id)
            if apply:
                for key, value in values.items():
                    setattr(row, key, value)
    gone = set(stored) - set(wanted)
    used: set[str] = set()
    if gone:
        query = select(Device.model_id).where(Device.model_id.in_(gone))
        used = set((await session.scalars(query)).unique().all())
    removed = sorted(gone - used)
    retired = sorted(m for m in used if stored[m].in_catalogue)
    if apply:
        for model_id in retired:
            stored[model_id].in_catalogue = False
        if removed:
            await session.execute(delete(DeviceModel).where(DeviceModel.id.in_(removed)))
    return CatalogueSync(tuple(added), tuple(updated), tuple(removed), tuple(retired))


async def sync_catalogue(
    db: Database, models: Sequence[CatalogueModel], actor: str = "catalogue"
) -> CatalogueSync:
    """Make device_models say what `models` say (see the module docstring).

    Planned under a read first: an unchanged catalogue (every start but the first after an
    upgrade) never takes the admin write lock, which every CLI command would otherwise hold
    for a moment; a change is planned again and applied under the lock."""
    wanted = {model.id: model_row(model) for model in models}
    async with db.read() as session:
        if not (await _plan(session, wanted, apply=False)).changed:
            return CatalogueSync((), (), (), ())
    async with db.write() as session:
        result = await _plan(session, wanted, apply=True)
        if result.changed:
            audit(
                session,
                actor,
                "catalogue.sync",
                "catalogue",
                None,
                None,
                {
                    "added": len(result.added),
                    "updated": len(result.updated),
                    "removed": list(result.removed),
                    "retired": list(result.retired),
                },
            )
    return result
