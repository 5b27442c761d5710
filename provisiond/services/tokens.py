"""Admin API tokens: created once and shown once; only a SHA-256 of each is stored.

A token is 256 random bits, so a plain (unsalted) hash is enough: nothing can be guessed from
it, and lookup stays a single indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from provisiond.domain.errors import Conflict, InvalidInput, NotFound
from provisiond.services.commands import TokenCreate
from provisiond.services.context import ServiceContext, audit
from provisiond.storage.models import ApiToken

PREFIX = "pvd_"


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the admin API."""

    name: str
    scope: str  # "admin" or "read"

    @property
    def can_write(self) -> bool:
        """Only admin-scope tokens change anything."""
        return self.scope == "admin"


class TokenService:
    """Create, list, revoke and check API tokens."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def create(self, cmd: TokenCreate, actor: str) -> str:
        """Create a token and return it; it cannot be shown again."""
        name = cmd.name.strip()
        if not name or any(ch.isspace() and ch != " " for ch in name):
            raise InvalidInput("token name must be non-empty printable text", field="name")
        token = PREFIX + secrets.token_urlsafe(32)
        async with self.ctx.db.write() as session:
            if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
                raise Conflict(f"a token named {name!r} exists", field="name")
            session.add(ApiToken(name=name, token_hash=hash_token(token), scope=cmd.scope))
            audit(
                session,
                actor,
                "token.create",
                "token",
                name,
                None,
                {"name": name, "scope": cmd.scope},
            )
        return token

    async def count(self) -> int:
        """How many tokens exist (serve creates the first one on an empty database)."""
        async with self.ctx.db.read() as session:
            return await session.scalar(select(func.count(ApiToken.id))) or 0

    async def list(self) -> list[dict[str, Any]]:
        """Token names, scopes and dates; never the tokens."""
        async with self.ctx.db.read() as session:
            rows = (await session.scalars(select(ApiToken).order_by(ApiToken.name))).all()
            return [
                {
                    "name": row.name,
                    "scope": row.scope,
                    "created_at": row.created_at.isoformat(),
                    "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
                }
                for row in rows
            ]

    async def revoke(self, name: str, actor: str) -> None:
        """Delete a token by name."""
        async with self.ctx.db.write() as session:
            result = await session.execute(delete(ApiToken).where(ApiToken.name == name))
            if not getattr(result, "rowcount", 0):
                raise NotFound(f"no token named {name!r}", field="name")
            audit(session, actor, "token.revoke", "token", name, {"name": name}, None)

    async def authenticate(self, token: str) -> Caller | None:
        """The caller owning `token`, or None."""
        if not token.startswith(PREFIX) or len(token) > 128:
            return None
        async with self.ctx.db.read() as session:
            row = await session.scalar(
                select(ApiToken).where(ApiToken.token_hash == hash_token(token))
            )
            return None if row is None else Caller(row.name, row.scope)
