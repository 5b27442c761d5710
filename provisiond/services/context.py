"""What every use case needs: the database, the settings, the keyring and the vendors' data;
the audit helper."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain.identify import VendorSpec
from provisiond.settings import Settings
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry
from provisiond.storage.secrets import SecretBox

MAX_PAGE = 500
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the schema (PostgreSQL refuses larger)


@dataclass
class ServiceContext:
    """Shared by all service classes; one per process (the composition root builds it)."""

    db: Database
    settings: Settings
    secrets: SecretBox
    # vendor id -> its vendor.toml (NOTIFY events per family): loaded by the composition root,
    # which the phone pipeline shares, so the services never import the provisioning package.
    vendors: Mapping[str, VendorSpec]


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    before: Any = None,
    after: Any = None,
) -> None:
    """Add an audit row to the current transaction (so it commits or rolls back with it)."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            before=before,
            after=after,
        )
    )


def clamp_page(limit: int | None, offset: int | None) -> tuple[int, int]:
    """Bounded pagination: limit 1..MAX_PAGE (default 50), offset >= 0."""
    lim = 50 if limit is None else max(1, min(MAX_PAGE, limit))
    return lim, max(0, offset or 0)
