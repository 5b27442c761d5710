"""SIP secrets encrypted at rest, with the key in a file that never enters the database.

A copied database (file, dump or backup) must not reveal any SIP password or digest secret, so
every column marked ``info={"secret": True}`` holds ``enc1:<key id>:<token>`` and the keys live
in a *keyring file* outside the database (default ``<data_dir>/keys/secrets.json``; its format
and its private, atomic writes are in provisiond.storage.keyring_file, whose names are
importable from here too).

Cipher: AES-256-GCM (``cryptography``'s AESGCM), a random 96-bit nonce per value, and the header
``enc1:<key id>`` as associated data, so a token relabelled with another key id or format
version fails authentication. ``token`` is unpadded urlsafe base64 of ``nonce || ciphertext ||
tag``. Chosen over Fernet/MultiFernet because: (1) we must name the key in the stored value
anyway (to find rows still under an old key during rotation, and to reload the keyring when an
id is unknown), which MultiFernet's try-every-key loop does not give; (2) Fernet tokens carry
their creation time in clear and are ~40 % longer (a 64-character password is 131 characters
here, 184 with Fernet); (3) one AEAD pass costs a few microseconds, cheaper than CBC + HMAC.
Random 96-bit nonces are safe far beyond our volumes (NIST's 2^32 messages per key).

Rotation while serving: `rotate_keyring` prepends a key (old ones stay, so every stored value
still decrypts); `SecretBox.encrypt` re-reads the file when it changed (one ``stat``; writes are
admin-paced), and `SecretBox.decrypt` re-reads it once when it meets an unknown key id, so a
serving process follows a rotation made by ``provisiond keys rotate`` without restarting.
`reencrypt` then moves every value to the newest key (compare-and-set per row, so a concurrent
admin change is never overwritten); `retire_keys` drops keys `census` shows unused. Every
failure raises `SecretError`; decrypt never returns garbage.

At start (`open_secret_box`) a serving process refuses a keyring that is missing, unreadable,
damaged, lacks a key the database names, or holds a different key under the same id (a sample
value per column and key fails authentication): it never serves files rendered from secrets it
cannot decrypt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CursorResult, Select, func, inspect, select, update
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute

from provisiond.storage.database import Database
from provisiond.storage.keyring_file import (
    KEY_BYTES,
    KEY_ID,
    KEYRING_VERSION,
    RESTORE_HINT,
    KeyEntry,
    Keyring,
    SecretError,
    init_keyring,
    load_keyring,
    parse_keyring,
    retire_keys,
    rotate_keyring,
)
from provisiond.storage.models import Base

__all__ = [
    "KEYRING_VERSION",
    "KEY_BYTES",
    "Census",
    "KeyEntry",
    "Keyring",
    "SecretBox",
    "SecretError",
    "census",
    "init_keyring",
    "is_encrypted",
    "key_id_of",
    "load_keyring",
    "open_secret_box",
    "parse_keyring",
    "reencrypt",
    "retire_keys",
    "rotate_keyring",
    "scrub_sqlite",
    "secret_columns",
]

log = logging.getLogger(__name__)

FORMAT = "enc1"
NONCE_BYTES = 12
BATCH_SIZE = 500
# 38 base64 characters = nonce + tag of an empty plaintext, the shortest valid token.
_STORED = re.compile(rf"{FORMAT}:({KEY_ID.pattern}):([A-Za-z0-9_-]{{38,}})")


def is_encrypted(stored: str) -> bool:
    """Whether `stored` has the shape of an encrypted value (else it is legacy plaintext)."""
    return _STORED.fullmatch(stored) is not None


def key_id_of(stored: str) -> str | None:
    """The key id an encrypted value names, or None for anything else."""
    match = _STORED.fullmatch(stored)
    return match.group(1) if match else None


def _signature(path: Path) -> tuple[int, int, int, int]:
    # os.replace gives a new inode, so rotations are seen even within one mtime tick.
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """An immutable snapshot, swapped whole so readers never see a half-updated keyring."""

    newest: str
    ciphers: Mapping[str, AESGCM]
    signature: tuple[int, int, int, int]


class SecretBox:
    """Encrypts with the newest key of the keyring file, decrypts with any key it lists.

    Safe to share across tasks and threads: state is one immutable snapshot replaced under a
    lock, and nothing awaits. `decrypt` of a known key costs a few microseconds and no I/O.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._loaded = self._load()

    @property
    def path(self) -> Path:
        """The keyring file."""
        return self._path

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The key ids currently loaded (newest first)."""
        return tuple(self._loaded.ciphers)

    def _load(self) -> _Loaded:
        try:
            signature = _signature(self._path)
        except OSError as exc:
            raise SecretError(f"keyring {self._path} is missing: {RESTORE_HINT}") from exc
        ring = load_keyring(self._path)
        ciphers = {entry.id: AESGCM(entry.key) for entry in ring.keys}
        return _Loaded(ring.newest.id, ciphers, signature)

    def _reload_if_changed(self) -> None:
        with self._lock:
            if _signature(self._path) != self._loaded.signature:
                self._loaded = self._load()

    def refresh(self) -> str:
        """Re-read the keyring if the file changed (one stat); returns the newest key id."""
        try:
            self._reload_if_changed()
        except OSError as exc:
            # Never encrypt under a key that is no longer on disk: it would die with this process.
            raise SecretError(f"keyring {self._path} is missing") from exc
        return self._loaded.newest

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte secret for another purpose (e.g. signing digest nonces), from the newest key.

        Every process that shares this keyring derives the same value, so workers and instances
        accept each other's nonces; a rotation changes it (old nonces then come back stale).
        """
        ring = load_keyring(self._path)
        return hmac.new(ring.newest.key, b"provisiond:" + purpose, hashlib.sha256).digest()

    def encrypt(self, plain: str) -> str:
        """``enc1:<newest key id>:<token>``; follows a rotation made by another process."""
        self.refresh()
        loaded = self._loaded
        header = f"{FORMAT}:{loaded.newest}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = loaded.ciphers[loaded.newest].encrypt(nonce, plain.encode(), header.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{header}:{token}"

    def decrypt(self, stored: str) -> str:
        """The plaintext of an `encrypt` result; raises `SecretError`, never returns garbage."""
        match = _STORED.fullmatch(stored)
        if match is None:
            raise SecretError("not an encrypted secret")
        key_id, token = match.groups()
        cipher = self._loaded.ciphers.get(key_id) or self._reload_for(key_id)
        header = f"{FORMAT}:{key_id}".encode()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], header).decode()
        except (binascii.Error, InvalidTag, UnicodeDecodeError) as exc:
            raise SecretError(f"secret under key {key_id} fails authentication") from exc

    def _reload_for(self, key_id: str) -> AESGCM:
        """One reload, only if the file changed since we read it (another process rotated)."""
        with contextlib.suppress(OSError):  # a vanished file leaves the id unknown
            self._reload_if_changed()
        cipher = self._loaded.ciphers.get(key_id)
        if cipher is None:
            raise SecretError(f"unknown key id {key_id!r}")
        return cipher


def secret_columns(
    base: type[DeclarativeBase] | None = None,
) -> tuple[InstrumentedAttribute[Any], ...]:
    """Every mapped column whose ``Column.info`` has ``{"secret": True}`` (default: our models)."""
    found = []
    for mapper in (base or Base).registry.mappers:
        for prop in mapper.column_attrs:
            if prop.columns[0].info.get("secret"):
                found.append(getattr(mapper.class_, prop.key))
    return tuple(sorted(found, key=lambda attr: (attr.class_.__name__, attr.key)))


@dataclass(frozen=True, slots=True)
class Census:
    """How many stored secrets each key id protects, and how many are still plaintext."""

    by_key: Mapping[str, int]
    plaintext: int


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    table: Any
    pk: Any
    column: Any


def _target(attr: InstrumentedAttribute[Any]) -> _Target:
    mapper = inspect(attr.class_)
    if len(mapper.primary_key) != 1:
        raise SecretError(f"{mapper.class_.__name__}: secret columns need a one-column key")
    column = mapper.columns[attr.key]
    return _Target(
        f"{column.table.name}.{column.name}", column.table, mapper.primary_key[0], column
    )


def _page(target: _Target, after: Any, limit: int, *where: Any) -> Select[Any]:
    """Keyset pagination: the next `limit` non-null values after primary key `after`."""
    query = select(target.pk, target.column).where(target.column.is_not(None), *where)
    if after is not None:
        query = query.where(target.pk > after)
    return query.order_by(target.pk).limit(limit)


async def census(
    db: Database,
    columns: Sequence[InstrumentedAttribute[Any]] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> Census:
    """Count stored secrets per key id (and plaintext ones) over the secret columns."""
    counts: Counter[str | None] = Counter()
    for attr in secret_columns() if columns is None else columns:
        target, after, read = _target(attr), None, batch_size
        while read == batch_size:
            async with db.read() as session:
                rows = (await session.execute(_page(target, after, batch_size))).all()
            counts.update(key_id_of(stored) for _pk, stored in rows)
            read, after = len(rows), rows[-1][0] if rows else after
    plaintext = counts.pop(None, 0)
    return Census({key: n for key, n in counts.items() if key is not None}, plaintext)


def _reseal(box: SecretBox, target: _Target, pk: Any, stored: str) -> tuple[str, bool]:
    """The value under the newest key, and whether it was legacy plaintext."""
    if not is_encrypted(stored):
        return box.encrypt(stored), True
    try:
        return box.encrypt(box.decrypt(stored)), False
    except SecretError as exc:
        raise SecretError(f"{target.name} row {pk}: {exc}") from exc


async def _reencrypt_batch(
    db: Database, box: SecretBox, target: _Target, after: Any, limit: int
) -> tuple[int, Any, int, int]:
    """One transaction: (rows read, last key, rows rewritten, of which plaintext)."""
    prefix = f"{FORMAT}:{box.refresh()}:"
    # substr, not LIKE: SQLite's LIKE ignores case, and this must be an exact prefix test.
    query = _page(target, after, limit, func.substr(target.column, 1, len(prefix)) != prefix)
    # Re-encryption is not a change of the row: keep updated_at (it is the files' Last-Modified).
    unchanged = {c.key: c for c in target.table.columns if c.onupdate is not None}
    changed = plaintext = 0
    async with db.background() as session:
        rows = (await session.execute(query)).all()
        for pk, stored in rows:
            sealed, legacy = _reseal(box, target, pk, stored)
            # Compare-and-set: an admin change committed meanwhile wins over our rewrite.
            statement = (
                update(target.table)
                .where(target.pk == pk, target.column == stored)
                .values({target.column.key: sealed, **unchanged})
            )
            result = cast(CursorResult[Any], await session.execute(statement))
            changed += result.rowcount
            plaintext += result.rowcount if legacy else 0
    return len(rows), rows[-1][0] if rows else after, changed, plaintext


async def scrub_sqlite(db: Database) -> None:
    """Rewrite a SQLite file so overwritten plaintext survives in no free page nor WAL frame."""
    if not db.is_sqlite:
        return
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # aiosqlite: VACUUM must run outside a transaction
        await driver.execute("VACUUM")
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def reencrypt(
    db: Database,
    box: SecretBox,
    columns: Sequence[InstrumentedAttribute[Any]] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    scrub: bool = True,
) -> int:
    """Move every secret value to the newest key, encrypting legacy plaintext; returns the count.

    Walks `columns` (default: `secret_columns()`) in primary-key order, `batch_size` rows per
    `db.background()` transaction. Raises `SecretError` naming the row when a value cannot be
    decrypted (nothing in that batch is written). When plaintext was encrypted on SQLite, the
    file is vacuumed (`scrub_sqlite`) so the old plaintext does not linger in free pages.
    """
    total = plaintext = 0
    for attr in secret_columns() if columns is None else columns:
        target, after, read = _target(attr), None, batch_size
        while read == batch_size:  # keyset pagination: ends after the last primary key
            read, after, changed, legacy = await _reencrypt_batch(
                db, box, target, after, batch_size
            )
            total, plaintext = total + changed, plaintext + legacy
    if plaintext and scrub:
        await scrub_sqlite(db)
    if total:
        log.info("re-encrypted %d secrets (%d were plaintext)", total, plaintext)
    return total


async def open_secret_box(
    db: Database,
    path: Path,
    *,
    create: bool,
    columns: Sequence[InstrumentedAttribute[Any]] | None = None,
) -> SecretBox:
    """The box for a serving process: create the keyring if allowed, check it, encrypt plaintext.

    Refuses (SecretError) to create a keyring when the database already holds encrypted values
    (the real keyring was lost or not deployed: a new key would strand them), to start when a
    stored value names a key the keyring lacks, and to start with a keyring whose key does not
    decrypt the stored values (`_check_decrypts`). Then finishes any interrupted rotation and
    encrypts legacy plaintext with `reencrypt`.
    """
    if not await asyncio.to_thread(os.path.lexists, path):
        found = await census(db, columns)
        if not create or found.by_key:
            used = ", ".join(sorted(found.by_key)) or "none"
            raise SecretError(
                f"keyring {path} is missing (keys used in the database: {used}); {RESTORE_HINT}"
            )
        init_keyring(path)
    box = SecretBox(path)
    await _check_decrypts(db, box, columns)
    if await _all_under(db, box.refresh(), columns):
        return box  # the usual start: two COUNTs per column, no walk over every row
    found = await census(db, columns)
    missing = set(found.by_key) - set(box.key_ids)
    if missing:
        raise SecretError(
            f"keyring {path} lacks keys {', '.join(sorted(missing))}: {RESTORE_HINT} "
            "(the newest copy: every `keys rotate` adds a key)"
        )
    await reencrypt(db, box, columns)
    return box


async def _check_decrypts(
    db: Database, box: SecretBox, columns: Sequence[InstrumentedAttribute[Any]] | None
) -> None:
    """Decrypt one stored value per column and key id: a keyring holding another key under the
    same id (another installation's, or a regenerated one) fails here, not at a phone's boot."""
    async with db.read() as session:
        for attr in secret_columns() if columns is None else columns:
            target = _target(attr)
            for key_id in box.key_ids:
                prefix = f"{FORMAT}:{key_id}:"
                query = _page(target, None, 1, target.column.startswith(prefix, autoescape=True))
                row = (await session.execute(query)).first()
                if row is None:
                    continue
                try:
                    box.decrypt(row[1])
                except SecretError as exc:
                    raise SecretError(
                        f"keyring {box.path} does not decrypt the stored secrets "
                        f"({target.name} row {row[0]}: {exc}): it is not this database's "
                        f"keyring; {RESTORE_HINT}"
                    ) from exc


async def _all_under(
    db: Database, key_id: str, columns: Sequence[InstrumentedAttribute[Any]] | None
) -> bool:
    """Is every stored secret sealed with `key_id`? (Counted in SQL, without reading them.)"""
    prefix = f"{FORMAT}:{key_id}:"
    async with db.read() as session:
        for attr in secret_columns() if columns is None else columns:
            column = _target(attr).column
            total, sealed = (
                await session.execute(
                    select(
                        func.count(column),
                        func.count(column).filter(column.startswith(prefix, autoescape=True)),
                    )
                )
            ).one()
            if total != sealed:
                return False
    return True
