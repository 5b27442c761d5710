"""The `provisiond` command: the server, the database and the admin use cases.

Every admin subcommand calls the same service methods as the admin API, so no rule is written
twice. Results print as JSON; refusals print ``provisiond: error: ...`` on stderr and exit 1
(2 for a malformed command line). `TABLE` declares every command once (see provisiond.cli_table):
the parser and the dispatch in `main` are both built from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from provisiond import cli_accounts, cli_fleet, cli_keys, cli_ops
from provisiond.app import (
    build_services,
    open_secrets,
    prepare_database,
)
from provisiond.cli_table import (
    AdminAction,
    Arg,
    Entry,
    Group,
    OneOf,
    admin,
    arg,
    blocking,
    command_of,
    operation,
)
from provisiond.cli_table import build_parser as build_table_parser
from provisiond.dhcp import SERVERS
from provisiond.domain.errors import DomainError, InvalidInput
from provisiond.domain.policy import POLICIES
from provisiond.server import serve
from provisiond.services import Services
from provisiond.services.commands import (
    DeviceCreate,
    DevicePatch,
    TokenCreate,
    UserCreate,
    UserPatch,
    parse,
)
from provisiond.services.sites import SiteCreate, SitePatch
from provisiond.settings import Settings, SettingsError, load_settings


def _actor() -> str:
    return cli_ops.actor()


def _value(text: str) -> Any:
    """`key=value` values: JSON when it parses (true, 10, null, "x"), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:  # not JSON, or a number too long to convert: the setting's check says
        return text


def _assignments(pairs: list[str]) -> dict[str, Any]:
    """Turn ``a.b=1 c=x`` into ``{"a": {"b": 1}, "c": "x"}``."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"expected key=value, got {pair!r}", field=pair)
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _value(raw)
    return tree


def _fields(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


_USER_FIELDS = ["username", "display_name", "main_extension", "cli_custom"]
_DEVICE_FIELDS = ["extension", "model", "mac", "sip_username", "sip_password", "label"]


def _user_body(args: argparse.Namespace) -> dict[str, Any]:
    body = _fields(args, _USER_FIELDS)
    body.update(_assignments(args.set or []))
    return body


async def user_create(s: Services, a: argparse.Namespace) -> Any:
    return await s.users.create(parse(UserCreate, _user_body(a)), _actor())


async def user_update(s: Services, a: argparse.Namespace) -> Any:
    return await s.users.update(a.id, parse(UserPatch, _user_body(a)), _actor())


def _site_field(value: str | None) -> dict[str, Any]:
    """``--site ID`` (or ``none`` to unbind) as the body's site_id."""
    if value is None:
        return {}
    if value.lower() == "none":
        return {"site_id": None}
    if not value.isascii() or not value.isdigit():
        raise InvalidInput(f"--site takes a site id or none, not {value!r}", field="site_id")
    return {"site_id": int(value)}


async def device_create(s: Services, a: argparse.Namespace) -> Any:
    body = _fields(a, [*_DEVICE_FIELDS, "user_id"]) | _site_field(a.site)
    if a.inactive:
        body["active"] = False
    return await s.devices.create(parse(DeviceCreate, body), _actor())


async def device_update(s: Services, a: argparse.Namespace) -> Any:
    body = _fields(a, _DEVICE_FIELDS) | _site_field(a.site)
    if a.active is not None:
        body["active"] = a.active == "true"
    return await s.devices.update(a.id, parse(DevicePatch, body), _actor())


async def user_delete(s: Services, a: argparse.Namespace) -> Any:
    await s.users.delete(a.id, _actor())
    return {"deleted": {"user": a.id}}


async def device_delete(s: Services, a: argparse.Namespace) -> Any:
    await s.devices.delete(a.id, new_primary=a.new_primary, actor=_actor())
    return {"deleted": {"device": a.id}}


async def token_create(s: Services, a: argparse.Namespace) -> Any:
    cmd = parse(TokenCreate, {"name": a.name, "scope": "read" if a.read_only else "admin"})
    token = await s.tokens.create(cmd, _actor())
    print(token)  # alone on stdout, for scripts
    return None


async def token_revoke(s: Services, a: argparse.Namespace) -> Any:
    await s.tokens.revoke(a.name, _actor())
    return {"revoked": a.name}


async def site_create(s: Services, a: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"name": a.name, "networks": a.networks, "policy": a.policy}
    if a.lock_on_first_boot:
        body["lock_on_first_boot"] = True
    return await s.sites.create(parse(SiteCreate, body), _actor())


async def site_update(s: Services, a: argparse.Namespace) -> Any:
    body = _fields(a, ["name", "networks", "policy"])
    if a.lock_on_first_boot is not None:
        body["lock_on_first_boot"] = a.lock_on_first_boot == "true"
    return await s.sites.update(a.id, parse(SitePatch, body), _actor())


async def site_delete(s: Services, a: argparse.Namespace) -> Any:
    await s.sites.delete(a.id, _actor())
    return {"deleted": {"site": a.id}}


async def models_list(s: Services, a: argparse.Namespace) -> Any:
    return await s.catalogue.models(a.vendor, a.series)


async def licence_set(s: Services, a: argparse.Namespace) -> Any:
    return await s.platform.put_licences(_assignments(a.counts), _actor())


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    serve(settings, args.workers)
    return 0


ID = arg("id", type=int)
TRUE_FALSE = ("true", "false")


def _user_options(*, create: bool) -> tuple[Arg, ...]:
    return (
        arg("--username", required=create),
        arg("--display-name", dest="display_name", required=create),
        arg("--main-extension", dest="main_extension", required=create),
        arg("--cli-custom", dest="cli_custom", help='custom CLI ("" clears it)'),
        arg(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="feature fields, e.g. team_app.enabled=true client.web_phone=true "
            "team_app.gsm_number=+393331234567 team_app.fallback_timeout_s=null",
        ),
    )


def _device_options(*, create: bool) -> tuple[Arg, ...]:
    return (
        arg("--extension", required=create),
        arg("--model", required=create, help="catalogue id, see `provisiond models`"),
        arg("--mac", required=create),
        arg("--sip-username", dest="sip_username"),
        arg("--sip-password", dest="sip_password", help="generated when omitted"),
        arg("--label"),
        arg("--site", help="id of the site it belongs to (`provisiond site list`); none: no site"),
    )


def _site_options(*, create: bool) -> tuple[Arg, ...]:
    return (
        arg("--name", required=create),
        arg(
            "--network",
            dest="networks",
            action="append",
            required=create,
            help="CIDR, IPv4 or IPv6; repeat for several",
        ),
        arg("--policy", choices=POLICIES, default="open" if create else None),
        arg("--lock-on-first-boot", dest="lock_on_first_boot", action="store_true")
        if create
        else arg("--lock-on-first-boot", dest="lock_on_first_boot", choices=TRUE_FALSE),
    )


USER_DEVICE = (arg("user", type=int), arg("device", type=int))
NEW_PRIMARY = arg("--new-primary", dest="new_primary", type=int)
REBOOT = arg("--reboot", action="store_true")
BACKUP_FILE = arg("file", type=Path)
WORKERS_HELP = "processes sharing the phone HTTP port (SO_REUSEPORT); default 1"

TABLE: tuple[Entry, ...] = (
    operation(
        "serve",
        "run the phone-facing listeners and the admin API",
        _serve,
        arg("--workers", type=int, default=1, metavar="N", help=WORKERS_HELP),
    ),
    Group("db", "database schema"),
    *(
        operation(f"db {name}", text, blocking(lambda st, a: cli_ops.db_command(st, a.sub)))
        for name, text in (
            ("upgrade", "create or upgrade the schema to the latest revision"),
            ("check", "check that the models and the migrations agree"),
            ("current", "print the schema's revision"),
        )
    ),
    Group("user", "users"),
    admin(
        "user list",
        "users by username; --search matches username, display name or extension",
        lambda s, a: s.users.list(a.search, a.limit, a.offset),
        arg("--search"),
        paging=True,
    ),
    admin("user show", "one user with their devices", lambda s, a: s.users.get(a.id), ID),
    admin("user create", "create a user", user_create, *_user_options(create=True)),
    admin("user update", "change a user", user_update, ID, *_user_options(create=False)),
    admin("user delete", "delete a user; their devices stay, unassigned", user_delete, ID),
    Group("device", "devices"),
    admin(
        "device list",
        "devices by extension prefix, MAC or user",
        lambda s, a: s.devices.list(
            extension_prefix=a.prefix, mac=a.mac, user_id=a.user_id, limit=a.limit, offset=a.offset
        ),
        arg("--prefix", help="extension prefix (autocomplete)"),
        arg("--mac"),
        arg("--user-id", dest="user_id", type=int),
        paging=True,
    ),
    admin("device show", "one device", lambda s, a: s.devices.get(a.id), ID),
    admin(
        "device create",
        "create a device (and assign it with --user)",
        device_create,
        *_device_options(create=True),
        arg("--user", dest="user_id", type=int, help="assign to this user at once"),
        arg("--inactive", action="store_true"),
    ),
    admin(
        "device update",
        "change a device",
        device_update,
        ID,
        *_device_options(create=False),
        arg("--active", choices=TRUE_FALSE),
    ),
    admin(
        "device delete",
        "delete a device; a user's primary needs --new-primary when others remain",
        device_delete,
        ID,
        NEW_PRIMARY,
    ),
    admin(
        "device release-lock",
        "undo the first-boot lock",
        lambda s, a: s.sites.release_lock(a.id, _actor()),
        ID,
    ),
    admin(
        "device reveal-password",
        "print the SIP password (audited)",
        lambda s, a: s.devices.reveal_password(a.id, _actor()),
        ID,
    ),
    admin(
        "device resync",
        "send the phone its vendor's resync NOTIFY",
        lambda s, a: s.resync.resync(a.id, reboot=a.reboot, actor=_actor()),
        ID,
        REBOOT,
    ),
    admin(
        "resync",
        "resync every device of a user, a model or a site",
        lambda s, a: s.resync.resync_many(
            user_id=a.user_id, model=a.model, site=a.site, reboot=a.reboot, actor=_actor()
        ),
        OneOf(
            (
                arg("--user", dest="user_id", type=int),
                arg("--model"),
                arg("--site", type=int, help="site id: devices last seen in its networks"),
            ),
            required=True,
        ),
        REBOOT,
    ),
    Group("site", "sites and their access policy"),
    admin("site list", "every site, by name", lambda s, a: s.sites.list()),
    admin("site show", "one site", lambda s, a: s.sites.get(a.id), ID),
    admin("site create", "create a site", site_create, *_site_options(create=True)),
    admin("site update", "change a site", site_update, ID, *_site_options(create=False)),
    admin("site delete", "delete a site; devices locked to it are released", site_delete, ID),
    Group("keys", "the key that encrypts SIP secrets"),
    *(
        operation(f"keys {name}", text, blocking(lambda st, a: cli_ops.keys_command(st, a.sub)))
        for name, text in (
            ("init", "create the keyring (once per installation)"),
            ("rotate", "new key, re-encrypt every secret, retire unused keys"),
            ("status", "which keys the stored secrets use"),
        )
    ),
    admin(
        "assign",
        "assign a device to a user",
        lambda s, a: s.assignments.assign(a.user, a.device, move=a.move, actor=_actor()),
        *USER_DEVICE,
        arg("--move", action="store_true", help="take it from another user"),
    ),
    admin(
        "unassign",
        "take a device from a user",
        lambda s, a: s.assignments.unassign(
            a.user, a.device, new_primary=a.new_primary, actor=_actor()
        ),
        *USER_DEVICE,
        NEW_PRIMARY,
    ),
    admin(
        "primary",
        "choose a user's primary line: a device, or --slot N of it",
        lambda s, a: s.assignments.set_primary(a.user, a.device, slot=a.slot, actor=_actor()),
        *USER_DEVICE,
        arg("--slot", type=int, default=1),
    ),
    Group("licence", "licences"),
    admin("licence show", "counts and seats in use", lambda s, a: s.platform.get_licences()),
    admin(
        "licence set",
        "set counts; lowering one below the seats in use is refused",
        licence_set,
        arg("counts", nargs="+", metavar="MODULE=COUNT"),
    ),
    Group("settings", "platform settings"),
    admin("settings show", "the effective settings", lambda s, a: s.platform.get_settings()),
    admin(
        "settings set",
        "change settings (nested keys with dots)",
        lambda s, a: s.platform.put_settings(_assignments(a.values), _actor()),
        arg("values", nargs="+", metavar="KEY=VALUE"),
    ),
    Group("token", "admin API tokens"),
    admin(
        "token create",
        "create a token and print it; it cannot be shown again",
        token_create,
        arg("name"),
        arg("--read-only", action="store_true"),
    ),
    admin("token list", "names, scopes and dates; never the tokens", lambda s, a: s.tokens.list()),
    admin("token revoke", "revoke a token", token_revoke, arg("name")),
    admin("models", "the model catalogue", models_list, arg("--vendor"), arg("--series")),
    admin(
        "unprovisioned",
        "MACs that asked for a config",
        lambda s, a: s.catalogue.unprovisioned(a.limit, a.offset),
        paging=True,
    ),
    admin(
        "directory",
        "who answers a number",
        lambda s, a: s.directory.lookup(a.number),
        arg("number"),
    ),
    *cli_accounts.TABLE,
    *cli_keys.TABLE,
    *cli_fleet.TABLE,
    operation(
        "backup",
        "every table to FILE, consistent while serving (the keyring is NOT in it)",
        blocking(cli_ops.backup_command),
        BACKUP_FILE,
    ),
    operation(
        "restore",
        "load a backup FILE into an empty database",
        blocking(cli_ops.backup_command),
        BACKUP_FILE,
        arg("--force", action="store_true", help="replace everything the database holds"),
    ),
    operation(
        "dhcp",
        "print the DHCP options a site's phones need",
        blocking(cli_ops.dhcp),
        arg("--server", required=True, choices=SERVERS),
        arg("--site", required=True, help="site name (see `provisiond site list`)"),
    ),
    operation(
        "render",
        "print the file a phone would get",
        blocking(cli_ops.render),
        arg("--mac", required=True),
        arg("--path", required=True, help="as the phone asks, e.g. 001565aabbcc.cfg"),
        arg("--user-agent", dest="user_agent"),
        arg("--client-ip", dest="client_ip", default="127.0.0.1"),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, built from `TABLE`."""
    return build_table_parser(
        TABLE,
        prog="provisiond",
        description=__doc__.split("\n")[0],
        options=(arg("--config", type=Path, help="TOML settings file"),),
    )


async def _admin_command(settings: Settings, action: AdminAction, args: argparse.Namespace) -> int:
    db = await prepare_database(settings)
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        result = await action(services, args)
    finally:
        await db.dispose()
    if result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    command = command_of(args)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 1
    try:
        if command.operator is not None:
            return command.operator(settings, args)
        assert command.action is not None  # a Command has exactly one of the two
        return asyncio.run(_admin_command(settings, command.action, args))
    except DomainError as exc:
        where = f" (field: {exc.field})" if exc.field else ""
        print(f"provisiond: error: {exc.detail}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except Exception as exc:
        message = cli_ops.database_fault(settings, exc)
        if message is None:
            raise
        print(f"provisiond: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
