"""Each vendor's documented boot, replayed over real HTTP against the phone stack.

The cases are tests/integration/boot_sequences.py. The device file is fetched with curl (a
real command-line client sending the phone's User-Agent), everything else with aiohttp; every
sequence runs at the root and under the "prov/" prefix. The server side is the real resolver
behind the real phone HTTP frontend over a test database (tests/integration/phone_stack.py).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from tests.integration.boot_sequences import (
    BOOT_CASES,
    PASSWORD,
    VENDORS,
    BootCase,
    Role,
    Step,
    mac_forms,
    provision,
)
from tests.integration.phone_stack import PhoneStack
from tests.tftp_helpers import require_tool

CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES]
UA_MAC_CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES if case.ua_has_mac]
UPLOAD_CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES if case.uploads]
LABEL_CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES if case.cli_in_label]
# Requests whose path names the device (a `mac` group in the vendor's pattern).
PER_DEVICE = {Role.BOOT, Role.DEVICE, Role.UPLOAD_READ}
# Files that tell the phone what to fetch next: (case, file, regex of the names, separator).
# The names may hold the phone's own macros: Panasonic {MAC}/{MODEL}, Cisco $MA.
NAMING_FILES = [
    ("yealink-t46s", "{mac}.boot", r'include:config "([^"]+)"', None),
    ("polycom-vvx-410", "{mac}.cfg", r'CONFIG_FILES="([^"]+)"', ","),
    ("panasonic-kx-ut113", "KX-UT113.cfg", r'_FILE_PATH="[^"]*/([^"/]+)"', None),
    ("cisco-spa508g", "spa508G.cfg", r"<Profile_Rule[^>]*>[^<]*/([^</]+)<", None),
]


def other_mac(case: BootCase) -> str:
    """A MAC of the same vendor (same OUI) that is not the case's device."""
    return case.mac[:6] + "c0ffee"


def session(case: BootCase, mac: str | None = None) -> aiohttp.ClientSession:
    """An aiohttp client sending the phone's User-Agent (claiming `mac`), or none at all."""
    agent = case.user_agent(mac)
    if agent is None:
        return aiohttp.ClientSession(skip_auto_headers=["User-Agent"])
    return aiohttp.ClientSession(headers={"User-Agent": agent})


async def fetch(
    http: aiohttp.ClientSession, method: str, url: str, data: bytes | None = None
) -> tuple[int, bytes]:
    """(status, body) of one request."""
    async with http.request(method, url, data=data) as response:
        return response.status, await response.read()


async def curl(url: str, user_agent: str | None, out: Path) -> tuple[int, bytes]:
    """GET with curl as the phone would: (status, body)."""
    tool = require_tool("curl", "curl")
    agent = ["-A", user_agent] if user_agent is not None else ["-H", "User-Agent:"]
    process = await asyncio.create_subprocess_exec(
        tool, "-s", "-o", str(out), "-w", "%{http_code}", *agent, url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    return int(stdout), out.read_bytes() if out.exists() else b""


def check_answer(case: BootCase, step: Step, url: str, status: int, body: bytes) -> None:
    """Status as documented; the device file holds the values; nothing else holds the secret."""
    assert status == step.status, f"{step.method} {url}: {status}"
    if step.role is Role.DEVICE:
        problems = case.values.mismatches(body)
        assert not problems, f"{url}: " + "; ".join(problems)
    else:
        assert PASSWORD.encode() not in body, f"{url} leaks the SIP password"


async def replay_gets(case: BootCase, base: str, tmp_path: Path) -> dict[str, bytes]:
    """Every boot GET under `base`, in order; the bodies by path."""
    bodies = {}
    async with session(case) as http:
        for step in case.gets:
            path = case.path(step.path)
            if step.role is Role.DEVICE:
                status, body = await curl(base + path, case.user_agent(), tmp_path / "curl.out")
            else:
                status, body = await fetch(http, "GET", base + path)
            check_answer(case, step, base + path, status, body)
            bodies[path] = body
    return bodies


def test_every_vendor_has_a_case() -> None:
    """The table covers the eleven vendors, and each case names its device file once."""
    assert {case.vendor for case in BOOT_CASES} == set(VENDORS)
    assert len({case.mac for case in BOOT_CASES}) == len(BOOT_CASES)
    for case in BOOT_CASES:
        devices = [s.path for s in case.steps if s.role is Role.DEVICE]
        assert devices == [case.device_path], case.id


@pytest.mark.parametrize("case", CASES)
async def test_boot_sequence(phone_stack: PhoneStack, case: BootCase, tmp_path: Path) -> None:
    """The whole boot at the root and under the prefix; then the device shows as seen."""
    device_id = await provision(phone_stack.services, case)
    at_root = await replay_gets(case, phone_stack.http_url, tmp_path)
    under_prefix = await replay_gets(case, phone_stack.http_url + "prov/", tmp_path)
    assert under_prefix == at_root

    await phone_stack.activity.flush()
    seen = (await phone_stack.services.devices.get(device_id))["last_seen"]
    assert seen is not None
    assert (seen["ip"], seen["user_agent"], seen["firmware"]) == (
        "127.0.0.1",
        case.user_agent(),
        case.firmware,
    )


def swap_mac_case(template: str) -> str:
    """The same path template with the MAC in the other case."""
    return template.replace("{mac}", "{_}").replace("{MAC}", "{mac}").replace("{_}", "{MAC}")


@pytest.mark.parametrize(
    ("model", "template", "pattern", "separator"), NAMING_FILES, ids=[n[0] for n in NAMING_FILES]
)
async def test_boot_files_name_what_follows(
    phone_stack: PhoneStack, model: str, template: str, pattern: str, separator: str | None
) -> None:
    """The files a boot file points the phone at are the ones the table says it reads next."""
    case = next(c for c in BOOT_CASES if c.model == model)
    await provision(phone_stack.services, case)
    async with session(case) as http:
        status, body = await fetch(http, "GET", phone_stack.http_url + case.path(template))
    assert status == 200
    macros = {"{MAC}": case.mac.upper(), "{MODEL}": "KX-UT113", "$MA": case.mac}
    named = []
    for found in re.findall(pattern, body.decode()):
        for name in found.split(separator) if separator else [found]:
            for macro, value in macros.items():
                name = name.replace(macro, value)
            named.append(name.strip())
    later = [case.path(s.path) for s in case.gets]
    later = later[later.index(case.path(template)) + 1 :]
    assert named, body.decode()
    assert set(named) <= set(later), (named, later)


@pytest.mark.parametrize("case", CASES)
async def test_mac_case_variants(phone_stack: PhoneStack, case: BootCase) -> None:
    """Per-MAC names answer the same whichever case the phone writes the MAC in."""
    await provision(phone_stack.services, case)
    async with session(case) as http:
        for step in (s for s in case.gets if s.per_mac):
            url = phone_stack.http_url + case.path(step.path)
            variant = phone_stack.http_url + case.path(swap_mac_case(step.path))
            assert url != variant
            expected = await fetch(http, "GET", url)
            assert await fetch(http, "GET", variant) == expected, variant
            assert expected[0] == step.status, url


@pytest.mark.parametrize("case", UPLOAD_CASES)
async def test_uploads_are_stored_and_served_back(phone_stack: PhoneStack, case: BootCase) -> None:
    """The vendor's uploads (PUT or POST) are stored per device and read back at boot."""
    await provision(phone_stack.services, case)
    async with session(case) as http:
        for base in (phone_stack.http_url, phone_stack.http_url + "prov/"):
            for step in case.uploads:
                url = base + case.path(step.path)
                payload = f"{step.path} stored through {base}\n".encode()
                status, _ = await fetch(http, step.method, url, payload)
                assert status == step.status, f"{step.method} {url}"
                assert await fetch(http, "GET", url) == (200, payload), url


@pytest.mark.parametrize("case", UA_MAC_CASES)
async def test_user_agent_of_another_mac_is_refused(
    phone_stack: PhoneStack, case: BootCase
) -> None:
    """A User-Agent claiming another MAC is refused every per-device name, uploads included,
    with the site's one "not for you" answer (404 in the open default site)."""
    await provision(phone_stack.services, case)
    async with session(case, other_mac(case)) as http:
        for step in case.steps:
            if step.role not in PER_DEVICE | {Role.UPLOAD}:
                continue
            url = phone_stack.http_url + case.path(step.path)
            status, body = await fetch(
                http, step.method, url, b"x" if step.method != "GET" else None
            )
            assert status == 404, f"{step.method} {url}"
            assert PASSWORD.encode() not in body
    await phone_stack.activity.flush()
    assert (await phone_stack.services.catalogue.unprovisioned())["items"] == []


@pytest.mark.parametrize("case", CASES)
async def test_unknown_mac_is_404_and_listed(phone_stack: PhoneStack, case: BootCase) -> None:
    """An unknown phone of the vendor gets 404 and is listed with the vendor guessed."""
    await provision(phone_stack.services, case)
    stranger = other_mac(case)
    async with session(case, stranger) as http:
        url = phone_stack.http_url + case.path(case.device_path, stranger)
        status, body = await fetch(http, "GET", url)
    assert status == 404, url
    assert PASSWORD.encode() not in body
    await phone_stack.activity.flush()
    listed = (await phone_stack.services.catalogue.unprovisioned())["items"]
    # Without a User-Agent only a file name no other vendor uses tells the vendor.
    vendor = case.vendor if case.user_agent() or not case.shares_name_with else None
    assert [(row["mac"], row["vendor"]) for row in listed] == [
        (mac_forms(stranger)["mac_colon"], vendor)
    ]


@pytest.mark.parametrize("case", LABEL_CASES)
async def test_label_shows_presented_cli(phone_stack: PhoneStack, case: BootCase) -> None:
    """Without a label of its own, the line label of a vendor without a CLI key shows the CLI."""
    await provision(phone_stack.services, case)
    assert case.cli_in_label is not None
    async with session(case) as http:
        status, body = await fetch(http, "GET", phone_stack.http_url + case.path(case.device_path))
    assert status == 200
    problems = case.cli_in_label.mismatches(body)
    assert not problems, "; ".join(problems)
