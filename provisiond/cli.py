"""The `provisiond` command: the server, the database and the admin use cases.

Every admin subcommand calls the same service methods as the admin API, so no rule is written
twice. Results print as JSON; refusals print ``provisiond: error: ...`` on stderr and exit 1
(2 for a malformed command line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from provisiond import cli_fleet, cli_ops
from provisiond.app import (
    build_services,
    open_secrets,
    prepare_database,
)
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

Action = Callable[[Services, argparse.Namespace], Awaitable[Any]]


def _actor() -> str:
    return cli_ops.actor()


def _value(text: str) -> Any:
    """`key=value` values: JSON when it parses (true, 10, null, "x"), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
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


async def licence_set(s: Services, a: argparse.Namespace) -> Any:
    return await s.platform.put_licences(_assignments(a.counts), _actor())


ACTIONS: dict[str, Action] = {
    "user list": lambda s, a: s.users.list(a.search, a.limit, a.offset),
    "user show": lambda s, a: s.users.get(a.id),
    "user create": user_create,
    "user update": user_update,
    "user delete": user_delete,
    "device list": lambda s, a: s.devices.list(
        extension_prefix=a.prefix, mac=a.mac, user_id=a.user_id, limit=a.limit, offset=a.offset
    ),
    "device show": lambda s, a: s.devices.get(a.id),
    "device create": device_create,
    "device update": device_update,
    "device delete": device_delete,
    "device release-lock": lambda s, a: s.sites.release_lock(a.id, _actor()),
    "device reveal-password": lambda s, a: s.devices.reveal_password(a.id, _actor()),
    "device resync": lambda s, a: s.resync.resync(a.id, reboot=a.reboot, actor=_actor()),
    "resync": lambda s, a: s.resync.resync_many(
        user_id=a.user_id, model=a.model, site=a.site, reboot=a.reboot, actor=_actor()
    ),
    "site list": lambda s, a: s.sites.list(),
    "site show": lambda s, a: s.sites.get(a.id),
    "site create": site_create,
    "site update": site_update,
    "site delete": site_delete,
    "assign": lambda s, a: s.assignments.assign(a.user, a.device, move=a.move, actor=_actor()),
    "unassign": lambda s, a: s.assignments.unassign(
        a.user, a.device, new_primary=a.new_primary, actor=_actor()
    ),
    "primary": lambda s, a: s.assignments.set_primary(a.user, a.device, actor=_actor()),
    "licence show": lambda s, a: s.platform.get_licences(),
    "licence set": licence_set,
    "settings show": lambda s, a: s.platform.get_settings(),
    "settings set": lambda s, a: s.platform.put_settings(_assignments(a.values), _actor()),
    "token create": token_create,
    "token list": lambda s, a: s.tokens.list(),
    "token revoke": token_revoke,
    "models": lambda s, a: s.catalogue.models(a.vendor),
    "unprovisioned": lambda s, a: s.catalogue.unprovisioned(a.limit, a.offset),
    "directory": lambda s, a: s.directory.lookup(a.number),
    "import": lambda s, a: cli_fleet.run_import(s, a, _actor()),
    "export": lambda s, a: cli_fleet.run_export(s, a, _actor()),
    "firmware add": cli_fleet.firmware_add,
    "firmware list": cli_fleet.firmware_list,
    "firmware target": cli_fleet.firmware_target,
    "firmware verify": cli_fleet.firmware_verify,
}


def _paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int)


def _user_options(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument("--username", required=create)
    p.add_argument("--display-name", dest="display_name", required=create)
    p.add_argument("--main-extension", dest="main_extension", required=create)
    p.add_argument("--cli-custom", dest="cli_custom", help='custom CLI ("" clears it)')
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="feature fields, e.g. team_app.enabled=true client.web_phone=true "
        "team_app.gsm_number=+393331234567 team_app.fallback_timeout_s=null",
    )


def _device_options(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument("--extension", required=create)
    p.add_argument("--model", required=create, help="catalogue id, see `provisiond models`")
    p.add_argument("--mac", required=create)
    p.add_argument("--sip-username", dest="sip_username")
    p.add_argument("--sip-password", dest="sip_password", help="generated when omitted")
    p.add_argument("--label")
    p.add_argument(
        "--site", help="id of the site it belongs to (`provisiond site list`); none: no site"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(prog="provisiond", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="TOML settings file")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the phone-facing listeners and the admin API")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes sharing the phone HTTP port (SO_REUSEPORT); default 1",
    )
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="sub", required=True)
    for name in ("upgrade", "check", "current"):
        db.add_parser(name)

    user = sub.add_parser("user", help="users").add_subparsers(dest="sub", required=True)
    p = user.add_parser("list")
    p.add_argument("--search")
    _paging(p)
    user.add_parser("show").add_argument("id", type=int)
    _user_options(user.add_parser("create"), create=True)
    p = user.add_parser("update")
    p.add_argument("id", type=int)
    _user_options(p, create=False)
    user.add_parser("delete").add_argument("id", type=int)

    device = sub.add_parser("device", help="devices").add_subparsers(dest="sub", required=True)
    p = device.add_parser("list")
    p.add_argument("--prefix", help="extension prefix (autocomplete)")
    p.add_argument("--mac")
    p.add_argument("--user-id", dest="user_id", type=int)
    _paging(p)
    device.add_parser("show").add_argument("id", type=int)
    p = device.add_parser("create")
    _device_options(p, create=True)
    p.add_argument("--user", dest="user_id", type=int, help="assign to this user at once")
    p.add_argument("--inactive", action="store_true")
    p = device.add_parser("update")
    p.add_argument("id", type=int)
    _device_options(p, create=False)
    p.add_argument("--active", choices=["true", "false"])
    p = device.add_parser("delete")
    p.add_argument("id", type=int)
    p.add_argument("--new-primary", dest="new_primary", type=int)
    device.add_parser("release-lock", help="undo the first-boot lock").add_argument("id", type=int)
    device.add_parser("reveal-password", help="print the SIP password (audited)").add_argument(
        "id", type=int
    )
    p = device.add_parser("resync", help="send the phone its vendor's resync NOTIFY")
    p.add_argument("id", type=int)
    p.add_argument("--reboot", action="store_true")
    p = sub.add_parser("resync", help="resync every device of a user, a model or a site")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", dest="user_id", type=int)
    which.add_argument("--model")
    which.add_argument("--site", type=int, help="site id: devices last seen in its networks")
    p.add_argument("--reboot", action="store_true")

    site = sub.add_parser("site", help="sites and their access policy").add_subparsers(
        dest="sub", required=True
    )
    site.add_parser("list")
    site.add_parser("show").add_argument("id", type=int)
    for name in ("create", "update"):
        p = site.add_parser(name)
        if name == "update":
            p.add_argument("id", type=int)
        p.add_argument("--name", required=name == "create")
        p.add_argument(
            "--network",
            dest="networks",
            action="append",
            required=name == "create",
            help="CIDR, IPv4 or IPv6; repeat for several",
        )
        p.add_argument("--policy", choices=POLICIES, default="open" if name == "create" else None)
        if name == "create":
            p.add_argument("--lock-on-first-boot", dest="lock_on_first_boot", action="store_true")
        else:
            p.add_argument(
                "--lock-on-first-boot", dest="lock_on_first_boot", choices=["true", "false"]
            )
    site.add_parser("delete").add_argument("id", type=int)

    keys = sub.add_parser("keys", help="the key that encrypts SIP secrets").add_subparsers(
        dest="sub", required=True
    )
    keys.add_parser("init", help="create the keyring (once per installation)")
    keys.add_parser("rotate", help="new key, re-encrypt every secret, retire unused keys")
    keys.add_parser("status", help="which keys the stored secrets use")

    for name, text in (
        ("assign", "assign a device to a user"),
        ("unassign", "take a device from a user"),
        ("primary", "choose a user's primary device"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("user", type=int)
        p.add_argument("device", type=int)
        if name == "assign":
            p.add_argument("--move", action="store_true", help="take it from another user")
        if name == "unassign":
            p.add_argument("--new-primary", dest="new_primary", type=int)

    lic = sub.add_parser("licence", help="licences").add_subparsers(dest="sub", required=True)
    lic.add_parser("show")
    lic.add_parser("set").add_argument("counts", nargs="+", metavar="MODULE=COUNT")
    st = sub.add_parser("settings", help="platform settings").add_subparsers(
        dest="sub", required=True
    )
    st.add_parser("show")
    st.add_parser("set").add_argument("values", nargs="+", metavar="KEY=VALUE")
    tok = sub.add_parser("token", help="admin API tokens").add_subparsers(dest="sub", required=True)
    p = tok.add_parser("create")
    p.add_argument("name")
    p.add_argument("--read-only", action="store_true")
    tok.add_parser("list")
    tok.add_parser("revoke").add_argument("name")
    sub.add_parser("models", help="the model catalogue").add_argument("--vendor")
    p = sub.add_parser("unprovisioned", help="MACs that asked for a config")
    _paging(p)
    sub.add_parser("directory", help="who answers a number").add_argument("number")
    cli_fleet.add_parsers(sub)
    p = sub.add_parser(
        "backup", help="every table to FILE, consistent while serving (the keyring is NOT in it)"
    )
    p.add_argument("file", type=Path)
    p = sub.add_parser("restore", help="load a backup FILE into an empty database")
    p.add_argument("file", type=Path)
    p.add_argument("--force", action="store_true", help="replace everything the database holds")
    p = sub.add_parser("dhcp", help="print the DHCP options a site's phones need")
    p.add_argument("--server", required=True, choices=SERVERS)
    p.add_argument("--site", required=True, help="site name (see `provisiond site list`)")
    p = sub.add_parser("render", help="print the file a phone would get")
    p.add_argument("--mac", required=True)
    p.add_argument("--path", required=True, help="as the phone asks, e.g. 001565aabbcc.cfg")
    p.add_argument("--user-agent", dest="user_agent")
    p.add_argument("--client-ip", dest="client_ip", default="127.0.0.1")
    return parser


async def _admin_command(settings: Settings, args: argparse.Namespace) -> int:
    key = f"{args.command} {args.sub}" if getattr(args, "sub", None) else args.command
    db = await prepare_database(settings)
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        result = await ACTIONS[key](services, args)
    finally:
        await db.dispose()
    if result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            serve(settings, args.workers)
            return 0
        if args.command == "render":
            return asyncio.run(cli_ops.render(settings, args))
        if args.command == "db":
            return asyncio.run(cli_ops.db_command(settings, args.sub))
        if args.command == "dhcp":
            return asyncio.run(cli_ops.dhcp(settings, args))
        if args.command == "keys":
            return asyncio.run(cli_ops.keys_command(settings, args.sub))
        if args.command in ("backup", "restore"):
            return asyncio.run(cli_ops.backup_command(settings, args))
        return asyncio.run(_admin_command(settings, args))
    except DomainError as exc:
        where = f" (field: {exc.field})" if exc.field else ""
        print(f"provisiond: error: {exc.detail}{where}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


if __name__ == "__main__":
    sys.exit(main())
