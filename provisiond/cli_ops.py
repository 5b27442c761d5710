"""Operator commands of the CLI: database, keys, backup/restore, DHCP and render.

Split from provisiond.cli (which parses the command line and runs the admin use cases) to keep
both readable; the functions here are called by `provisiond.cli.main`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys

from sqlalchemy import make_url

from provisiond.app import (
    build_phone_side,
    build_services,
    endpoints,
    open_secrets,
    prepare_database,
    sync_models,
)
from provisiond.dhcp import render_dhcp
from provisiond.domain.errors import InvalidInput, NotFound
from provisiond.domain.identify import match_path
from provisiond.domain.mac import mac_compact, parse_mac
from provisiond.domain.phone import PhoneRequest
from provisiond.provisioning.activity import DiscardActivity
from provisiond.provisioning.vendors import load_vendors
from provisiond.services.context import audit
from provisiond.settings import Settings
from provisiond.storage import backup, migrate
from provisiond.storage.database import Database, fault_of
from provisiond.storage.secrets import (
    SecretBox,
    SecretError,
    census,
    init_keyring,
    reencrypt,
    retire_keys,
    rotate_keyring,
)

KEYS_SETTLE_S = 2.0  # > the change feed's poll interval, so servers reload before a key retires


def actor() -> str:
    """Who the audit log names for a command-line change."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def db_command(settings: Settings, sub: str) -> int:
    url = settings.effective_database_url
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if sub == "upgrade":
        await migrate.upgrade(url)
        db = Database(url)
        try:
            synced = await sync_models(settings, db)
        finally:
            await db.dispose()
        print(f"database at revision {await migrate.current_revision(url)}")
        print(
            f"model catalogue: {len(synced.added)} added, {len(synced.updated)} updated, "
            f"{len(synced.removed)} removed, {len(synced.retired)} kept for their devices"
        )
    elif sub == "check":
        await migrate.check(url)
        print("models and migrations agree")
    else:
        print(await migrate.current_revision(url) or "(not initialised)")
    return 0


async def keys_command(settings: Settings, sub: str) -> int:
    """keys init | rotate | status: rotate is safe while serving (old keys still decrypt)."""
    path = settings.keyring_path
    if sub == "init":
        try:
            print(
                f"created key {init_keyring(path)} in {path}; back this file up, apart "
                "from the database"
            )
        except SecretError as exc:
            raise InvalidInput(str(exc), field="keyring") from exc
        return 0
    db = await prepare_database(settings)
    try:
        if sub == "rotate":
            new = rotate_keyring(path)
            count = await reencrypt(db, SecretBox(path))
            async with db.write() as session:  # serving processes reload every device on this
                audit(session, actor(), "keys.rotate", "keys", new, None, {"re_encrypted": count})
            await asyncio.sleep(KEYS_SETTLE_S)  # ... before the old key disappears
            # Retire only keys no stored value uses any more (census after re-encryption).
            retired = retire_keys(path, keep=set((await census(db)).by_key) | {new})
            print(json.dumps({"new_key": new, "re_encrypted": count, "retired": list(retired)}))
        else:
            found = await census(db)
            print(
                json.dumps(
                    {
                        "keyring": str(path),
                        "by_key": dict(found.by_key),
                        "plaintext": found.plaintext,
                    }
                )
            )
    finally:
        await db.dispose()
    return 0


async def backup_command(settings: Settings, args: argparse.Namespace) -> int:
    """backup FILE | restore FILE [--force]: secrets travel encrypted, the keyring never does."""
    db = await prepare_database(settings)
    try:
        if args.command == "backup":
            result = await backup.backup_report(db, args.file, settings.keyring_path)
        else:
            result = await backup.restore_report(
                db, args.file, settings.keyring_path, force=args.force
            )
    finally:
        await db.dispose()
    print(json.dumps(result, indent=2))
    return 0


async def dhcp(settings: Settings, args: argparse.Namespace) -> int:
    """Print the DHCP options a site's phones need, for dnsmasq, ISC dhcpd or Kea."""
    db = await prepare_database(settings)
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        sites = [s for s in await services.sites.list() if s["name"] == args.site]
    finally:
        await db.dispose()
    if not sites:
        raise NotFound(f"no site named {args.site!r}", field="site")
    ends = endpoints(settings)
    sys.stdout.write(
        render_dhcp(
            args.server,
            sites[0]["name"],
            sites[0]["networks"],
            http_url=ends.http_url,
            tftp_host=ends.tftp_host,
            tftp_port=ends.tftp_port,
            vendors=load_vendors(settings.templates_dir),
        )
    )
    return 0


async def render(settings: Settings, args: argparse.Namespace) -> int:
    """What the phone with `--mac` gets for `--path`: the admin's "why does it not register"."""
    mac = mac_compact(parse_mac(args.mac))
    db = await prepare_database(settings)
    try:
        phone = await build_phone_side(
            settings, db, await open_secrets(settings, db), activity=DiscardActivity(), follow=False
        )
        resolver = phone.resolver
        named = {m.mac for m in match_path(resolver.vendors, args.path.lstrip("/")) if m.mac}
        if named and mac not in named:
            raise InvalidInput(f"{args.path} names another MAC than {args.mac}", field="path")
        answer = await resolver.handle(
            PhoneRequest("http", "GET", args.path, args.user_agent, args.client_ip)
        )
    finally:
        await db.dispose()
    if not answer.ok:
        print(
            f"provisiond: the phone would get {answer.outcome.value}: {answer.detail}",
            file=sys.stderr,
        )
        return 1
    if answer.file is not None:
        print(f"firmware image {answer.file}")
        return 0
    sys.stdout.write(answer.body.decode("utf-8", "replace"))
    return 0


_DATABASE_ADVICE = {
    "unavailable": "start it, or fix database_url / PROVISIOND_DATABASE_URL",
    "disk_full": "free space on its disk",
}


def database_fault(settings: Settings, error: BaseException) -> str | None:
    """The message for an error that says the database is away or full (None: another error),
    naming the database without its password."""
    fault = fault_of(error)
    if fault is None:
        return None
    url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    state = fault.replace("_", " ")
    return f"the database {url} is {state}: {error}; {_DATABASE_ADVICE[fault]}"
