"""Issue 12, findings 1-3, attacked over real sockets: the existence oracle, devices bound to
their site, and the walk defence behind an office NAT.

Sites (all on loopback): "open" 127.0.1.0/24, "digest" 127.0.2.0/24, "locking" 127.0.3.0/24
(open, lock_on_first_boot); 127.0.9.x is outside every site. Clients pick their source
address; the phone side is the real resolver behind HTTP and TFTP (`secure_stack`).

1. One answer for "not for you": an unknown MAC, a known MAC under another vendor's file name,
   a device bound to another site, a User-Agent naming another MAC, a banned source: the same
   status and body per site (the digest challenge alike), over HTTP and TFTP; foreign names
   count towards the ban like unknown MACs; a garbage Authorization never lifts a ban outside
   a digest site.
2. A device bound to a site (admin API, CLI) is served only there, under its policy; another
   site never claims it, and a boot-file request never binds a device.
3. Fifty phones behind one NAT address, five of them new, all booting at once (each naming
   its MAC in its User-Agent): every known phone gets its own file, nobody is banned; a walker
   that forges self-naming User-Agents is still banned within the distinct-MAC threshold.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket

import pytest

from provisiond.provisioning import activity
from tests.integration import security_fixtures
from tests.integration.security_fixtures import (
    COMMON_FILE,
    HttpClients,
    Known,
    SecureStack,
    StackFactory,
    authorization,
    curl,
    leaks,
    pick,
    tftp_get,
    yealink_mac,
)
from tests.serve_process import REPO

secure_stack = security_fixtures.secure_stack
clients = security_fixtures.clients

OPEN, DIGEST, LOCKING, OUTSIDE = "127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24", "127.0.9.1"


def ua(mac: str, model: str = "T46S") -> str:
    """A Yealink User-Agent naming `mac`."""
    pairs = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    return f"Yealink SIP-{model} 66.86.0.15 {pairs}"


def shape(status: int, body: bytes, challenges: list[str]) -> tuple[int, bytes, list[str]]:
    """An answer with its random nonces blanked out, for comparing refusals."""
    return status, body, [re.sub(r'nonce="[^"]*"', 'nonce=""', c) for c in challenges]


async def three_sites(stack: SecureStack) -> dict[str, int]:
    """The open, digest and locking sites; their ids by name."""
    made = {
        "open": await stack.site("open", [OPEN], "open"),
        "digest": await stack.site("digest", [DIGEST], "digest"),
        "locking": await stack.site("locking", [LOCKING], "open", lock=True),
    }
    return {name: int(site["id"]) for name, site in made.items()}


async def bind(stack: SecureStack, device: Known, site_id: int | None) -> None:
    """PATCH the device's site through the admin API."""
    await stack.api.ok("PATCH", f"/api/v1/devices/{device.id}", {"site_id": site_id})


# -- 1. one answer for "not for you" ------------------------------------------------------


@pytest.mark.parametrize("where", ["open", "digest", "outside"])
async def test_every_not_for_you_looks_the_same(
    secure_stack: StackFactory, clients: HttpClients, where: str
) -> None:
    """Unknown MAC, foreign name, another site's device, lying User-Agent: one answer."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    mine = await stack.device(1, yealink_mac(0x400001))
    theirs = await stack.device(2, yealink_mac(0x400002))
    await bind(stack, theirs, sites["locking"])
    source = {"open": "127.0.1.10", "digest": "127.0.2.10", "outside": OUTSIDE}[where]
    probes = {
        "unknown": (f"{yealink_mac(0x4000FF)}.cfg", None),
        "foreign name": (f"SEP{mine.mac.upper()}.cnf.xml", None),
        "another site's device": (theirs.file, None),
        "lying User-Agent": (mine.file, ua(yealink_mac(0x4000FE))),
    }
    seen = {}
    for name, (path, agent) in probes.items():
        headers = {"User-Agent": agent} if agent else None
        answer = await clients.get(source, stack.url(path), headers)
        seen[name] = shape(answer.status, answer.body, answer.challenges)
        assert leaks([answer.body], [mine, theirs]) == []
    assert len(set(map(repr, seen.values()))) == 1, seen
    expected = {"open": 404, "digest": 401, "outside": 403}[where]
    assert next(iter(seen.values()))[0] == expected
    tftp = {name: await tftp_get(stack, path, source) for name, (path, _) in probes.items()}
    assert len({d.error for d in tftp.values()}) == 1, tftp


async def test_an_insider_who_knows_macs_gets_nothing_in_a_digest_site(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Issue 13 attack round, finding 1: a machine inside the site that knows real MACs and
    asks for nothing else. Under `open` nothing tells it from the phones (docs/security.md,
    "What `open` cannot stop"); under `digest` it gets no secret over HTTP or TFTP, and devices
    bound to another site stay out of its reach whatever that site's policy."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    phones = [await stack.device(n, yealink_mac(0x410000 + n)) for n in range(1, 4)]
    bound = await stack.device(9, yealink_mac(0x410009))
    await bind(stack, bound, sites["locking"])
    insider = "127.0.2.77"
    bodies = []
    for phone in [*phones, bound]:
        for name in (phone.file, phone.boot):
            answer = await clients.get(insider, stack.url(name))
            assert answer.status == 401, (name, answer.status)
            bodies.append(answer.body)
            download = await tftp_get(stack, name, insider)
            assert download.error is not None, name
            bodies.append(download.data)
    from_open_site = await clients.get("127.0.1.77", stack.url(bound.file))
    assert from_open_site.status == 404  # bound elsewhere: "not for you" in the open site
    bodies.append(from_open_site.body)
    assert leaks(bodies, [*phones, bound]) == []


async def test_foreign_names_count_like_unknown_macs(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Probing known MACs under other vendors' names bans the prober (as unknown MACs do)."""
    stack = await secure_stack()
    await three_sites(stack)
    known = [await stack.device(n, yealink_mac(0x410000 + n)) for n in range(40)]
    threshold = stack.settings.security.ban_unknown_per_source
    prober = "127.0.1.20"
    probes = 0
    for device in known:
        answer = await clients.get(prober, stack.url(f"SEP{device.mac.upper()}.cnf.xml"))
        assert answer.status == 404
        probes += 1
        if (await clients.get(prober, stack.url(COMMON_FILE))).status == 403:
            break
    assert probes <= threshold + 1, "foreign-name probes were never counted"
    assert prober in {ban["target"] for ban in await stack.api.ok("GET", "/api/v1/bans")}


async def test_garbage_authorization_never_lifts_a_ban_outside_digest_sites(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """A banned source stays refused whatever Authorization header it sends (open site)."""
    stack = await secure_stack()
    await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x420001))
    walker = "127.0.1.30"
    for offset in range(stack.settings.security.ban_unknown_per_source + 5):
        await clients.get(walker, stack.url(f"{yealink_mac(0x4200F0 + offset)}.cfg"))
    assert (await clients.get(walker, stack.url(COMMON_FILE))).status == 403
    for header in ("Digest garbage", 'Digest username="x", response="y"', "Basic eDp5"):
        headers = {"Authorization": header}
        answer = await clients.get(walker, stack.url(device.file), headers)
        assert answer.status == 404  # the open site's "not for you", as before the header
        assert leaks([answer.body], [device]) == []
        assert (await clients.get(walker, stack.url(COMMON_FILE), headers)).status == 403


# -- 2. devices bound to their site -------------------------------------------------------


async def test_a_bound_device_is_served_only_in_its_site_under_its_policy(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Bound to the digest site: never served (nor its password) in the open site; served
    in the digest site with its own credentials only; the locking site never claims it."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x430001))
    await bind(stack, device, sites["digest"])
    assert (await stack.api.ok("GET", f"/api/v1/devices/{device.id}"))["site_id"] == sites["digest"]

    for source in ("127.0.1.40", "127.0.3.40", OUTSIDE):
        for path in (device.file, device.boot):
            answer = await clients.get(source, stack.url(path), {"User-Agent": ua(device.mac)})
            assert answer.status in (403, 404), (source, path, answer.status)
            assert leaks([answer.body], [device]) == []
        assert (await tftp_get(stack, device.file, source)).error is not None
    await stack.activity.flush()
    assert (await stack.api.ok("GET", f"/api/v1/devices/{device.id}"))["site_id"] == sites[
        "digest"
    ], "another site claimed the device"

    inside = "127.0.2.40"
    plain = await clients.get(inside, stack.url(device.file))
    assert plain.status == 401
    header = authorization(
        pick(plain.challenges, "SHA-256"),
        device.mac,
        device.provisioning_password,
        "/" + device.file,
    )
    served = await clients.get(inside, stack.url(device.file), {"Authorization": header})
    assert served.status == 200
    assert device.sip_password.encode() in served.body

    await bind(stack, device, None)  # unbound: served under the requesting site's policy again
    assert (await clients.get("127.0.1.41", stack.url(device.file))).status == 200


async def test_a_boot_file_never_binds_and_a_bound_device_is_never_claimed(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """lock_on_first_boot binds on the first device file served (GET), not on a boot file or a
    HEAD; an admin's binding is never replaced by a first boot elsewhere."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x440001))
    other = await stack.device(2, yealink_mac(0x440002))
    await bind(stack, other, sites["open"])

    assert (await clients.get("127.0.3.50", stack.url(device.boot))).status == 200
    head = clients.new("127.0.3.52")
    async with head.head(stack.url(device.file)) as answer:
        assert answer.status == 200
    await stack.activity.flush()
    view = await stack.api.ok("GET", f"/api/v1/devices/{device.id}")
    assert view["site_id"] is None, "a boot file or a HEAD bound the device"
    assert (await clients.get("127.0.1.50", stack.url(device.file))).status == 200

    assert (await clients.get("127.0.3.51", stack.url(other.file))).status == 404
    await stack.activity.flush()
    view = await stack.api.ok("GET", f"/api/v1/devices/{other.id}")
    assert view["site_id"] == sites["open"]


async def test_a_forged_tftp_request_neither_binds_nor_steers_a_device(
    secure_stack: StackFactory,
) -> None:
    """Issue 13 attack round, finding 4: one RRQ with options, forged from inside a locking
    site and never acknowledged, used to bind an unbound device to that site (its phone
    elsewhere then got "not for you") and to record the forged address as last seen (where
    resync NOTIFYs go). Both now wait for the source's first ACK: a real client binds."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x420001))
    forger = "127.0.3.66"
    rrq = b"\x00\x01" + device.file.encode() + b"\x00octet\x00blksize\x001428\x00"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((forger, 0))
        udp.sendto(rrq, (security_fixtures.SERVER, stack.tftp_port))
        udp.settimeout(2)
        oack, _ = await asyncio.to_thread(udp.recvfrom, 2048)  # the OACK: never acknowledged
    assert oack[:2] == b"\x00\x06"
    await asyncio.sleep(0.3)
    await stack.activity.flush()
    stored = await stack.api.ok("GET", f"/api/v1/devices/{device.id}")
    assert stored["site_id"] is None, "a forged packet bound the device"
    assert stored["last_seen"] is None, "a forged packet recorded a sighting"

    download = await tftp_get(stack, device.file, "127.0.3.67", blksize="1428")  # a real phone
    assert download.error is None
    await stack.activity.flush()
    stored = await stack.api.ok("GET", f"/api/v1/devices/{device.id}")
    assert stored["site_id"] == sites["locking"]
    assert stored["last_seen"]["ip"] == "127.0.3.67"


async def test_bad_site_ids_are_refused_and_change_nothing(secure_stack: StackFactory) -> None:
    """An unknown site id is a clear 4xx naming the field; the device keeps its site."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x450001))
    await bind(stack, device, sites["open"])
    for bad in (999_999, 0, -1, "1", True):
        answer = await stack.api.call("PATCH", f"/api/v1/devices/{device.id}", {"site_id": bad})
        assert 400 <= answer.status < 500, (bad, answer.status)
        assert "site_id" in answer.text
    view = await stack.api.ok("GET", f"/api/v1/devices/{device.id}")
    assert view["site_id"] == sites["open"]


async def test_cli_binds_and_unbinds(secure_stack: StackFactory) -> None:
    """`provisiond device update ID --site N` / `--site none`, and a clear error otherwise."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x460001))
    settings = stack.settings
    env = {
        "PROVISIOND_DATABASE_URL": settings.effective_database_url,
        "PROVISIOND_DATA_DIR": str(settings.data_dir),
        "PROVISIOND_KEYRING": str(settings.keyring_path),
        "PATH": "/usr/bin:/bin",
    }

    async def cli(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            str(REPO / ".venv/bin/provisiond"),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode()

    code, out = await cli("device", "update", str(device.id), "--site", str(sites["digest"]))
    assert code == 0, out
    assert f'"site_id": {sites["digest"]}' in out
    code, out = await cli("device", "update", str(device.id), "--site", "none")
    assert code == 0, out
    assert '"site_id": null' in out
    code, out = await cli("device", "update", str(device.id), "--site", "office")
    assert code != 0
    assert "--site" in out


# -- 3. the office NAT --------------------------------------------------------------------


async def test_fifty_phones_behind_one_nat_provision_in_one_storm(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """45 known and 5 new phones share 127.0.1.100 and boot at once, files in any order: each
    known phone gets its own file and password, the new ones 404, nobody is banned."""
    stack = await secure_stack()
    await three_sites(stack)
    nat = "127.0.1.100"
    known = [await stack.device(n, yealink_mac(0x470000 + n)) for n in range(45)]
    new = [yealink_mac(0x4700F0 + n) for n in range(5)]
    requests = [(d.mac, name) for d in known for name in (d.boot, COMMON_FILE, d.file)]
    requests += [(mac, name) for mac in new for name in (f"{mac}.boot", f"{mac}.cfg")] * 3
    random.Random(12).shuffle(requests)

    async def boot(mac: str, name: str) -> tuple[str, str, int, bytes]:
        answer = await clients.get(nat, stack.url(name), {"User-Agent": ua(mac)})
        return mac, name, answer.status, answer.body

    results = await asyncio.gather(*(boot(mac, name) for mac, name in requests))
    by_mac = {d.mac: d for d in known}
    for mac, name, status, body in results:
        if mac in by_mac:
            assert status == 200, (mac, name, status)
            if name == by_mac[mac].file:
                assert by_mac[mac].sip_password.encode() in body
                others = [d for d in known if d.mac != mac]
                assert leaks([body], others) == []
        else:
            assert status == 404, (mac, name, status)
    assert await stack.api.ok("GET", "/api/v1/bans") == []


async def test_a_walker_forging_self_naming_user_agents_is_still_banned(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Naming each MAC in the User-Agent spares the walk memory, never the distinct-MAC count."""
    stack = await secure_stack()
    await three_sites(stack)
    threshold = stack.settings.security.ban_unknown_per_source
    walker = "127.0.1.110"
    for count in range(1, 1001):
        mac = yealink_mac(0x480000 + count)
        await clients.get(walker, stack.url(f"{mac}.cfg"), {"User-Agent": ua(mac)})
        if (await clients.get(walker, stack.url(COMMON_FILE))).status == 403:
            break
    assert count <= threshold + 1, f"banned only after {count} distinct MACs"


async def test_curl_digest_through_the_nat_after_a_ban(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """In the digest site, a phone sharing a banned guesser's address still logs in (curl)."""
    stack = await secure_stack()
    await three_sites(stack)
    device = await stack.device(1, yealink_mac(0x490001))
    nat = "127.0.2.120"
    for offset in range(stack.settings.security.ban_auth_failures + 2):
        mac = yealink_mac(0x4900F0 + offset)
        plain = await clients.get(nat, stack.url(f"{mac}.cfg"))
        assert plain.status == 401
        header = authorization(pick(plain.challenges, "SHA-256"), mac, "guess", f"/{mac}.cfg")
        await clients.get(nat, stack.url(f"{mac}.cfg"), {"Authorization": header})
    assert (await curl(stack.url(COMMON_FILE), source=nat))[0] == 403
    credentials = f"{device.mac}:{device.provisioning_password}"
    status, body = await curl(stack.url(device.file), "--digest", "--user", credentials, source=nat)
    assert status == 200
    assert device.sip_password.encode() in body


@pytest.mark.parametrize("where", ["outside", "open", "digest"])
async def test_the_ban_counter_cannot_tell_known_from_unknown(
    secure_stack: StackFactory, clients: HttpClients, where: str
) -> None:
    """One probe short of the threshold, then a known MAC the source may not have, or an
    unknown one: the source ends up banned, or not, alike (the attack that found this: 19
    unknown MACs, then the candidate, then the common file)."""
    stack = await secure_stack()
    sites = await three_sites(stack)
    known = await stack.device(1, yealink_mac(0x4D0001))
    await bind(stack, known, sites["locking"])  # refused in the open and digest sites
    cfg = stack.settings.security
    prefix = {"outside": "127.0.9", "open": "127.0.1", "digest": "127.0.2"}[where]
    threshold = cfg.ban_auth_failures if where == "digest" else cfg.ban_unknown_per_source

    async def probe(host: int, last: str, base: int) -> bool:
        source = f"{prefix}.{host}"
        macs = [yealink_mac(base + n) for n in range(threshold - 1)] + [last]
        for mac in macs:
            headers = None
            if where == "digest":  # a guesser: bare challenges count nothing there
                plain = await clients.get(source, stack.url(f"{mac}.cfg"))
                challenge = pick(plain.challenges, "SHA-256")
                headers = {"Authorization": authorization(challenge, mac, "x", f"/{mac}.cfg")}
            await clients.get(source, stack.url(f"{mac}.cfg"), headers)
        return (await clients.get(source, stack.url(COMMON_FILE))).status == 403

    banned_after_known = await probe(150, known.mac, 0x4D1000)
    banned_after_unknown = await probe(151, yealink_mac(0x4DFFFF), 0x4D2000)
    assert (banned_after_known, banned_after_unknown) == (True, True)


# -- sightings ----------------------------------------------------------------------------


async def test_sightings_only_from_inside_a_site_and_bounded(
    secure_stack: StackFactory, clients: HttpClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown MACs asked for from outside every site are not recorded; from inside they are,
    up to the table's cap, the least recently seen going first."""
    monkeypatch.setattr(activity, "MAX_UNPROVISIONED", 5)
    stack = await secure_stack()
    await three_sites(stack)
    for n in range(6):
        mac = yealink_mac(0x4A0000 + n)
        await clients.get(f"127.0.9.{n + 10}", stack.url(f"{mac}.cfg"), {"User-Agent": ua(mac)})
    await stack.activity.flush()
    assert (await stack.api.ok("GET", "/api/v1/unprovisioned"))["total"] == 0
    inside = [yealink_mac(0x4B0000 + n) for n in range(8)]
    for n, mac in enumerate(inside):
        await clients.get(f"127.0.1.{n + 60}", stack.url(f"{mac}.cfg"), {"User-Agent": ua(mac)})
        await stack.activity.flush()
    listed = (await stack.api.ok("GET", "/api/v1/unprovisioned?limit=100"))["items"]
    assert len(listed) == 5
    assert {row["mac"].replace(":", "") for row in listed} == set(inside[3:])


async def test_one_address_flooding_sightings_evicts_only_its_own(
    secure_stack: StackFactory, clients: HttpClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack round, issue 15: inside a site whose answers count nothing toward a ban, one
    address asked for thousands of unknown MACs with 60 KB User-Agents; the table grew by
    100+ MB and its cap evicted the real new phones others had reported. Now the address
    holding the most rows loses its own oldest first, and a User-Agent keeps 256 characters."""
    monkeypatch.setattr(activity, "MAX_UNPROVISIONED", 6)
    stack = await secure_stack()
    await three_sites(stack)
    real = [yealink_mac(0x4C0000 + n) for n in range(3)]
    for n, mac in enumerate(real):
        await clients.get(f"127.0.1.{n + 70}", stack.url(f"{mac}.cfg"), {"User-Agent": ua(mac)})
    await stack.activity.flush()
    for n in range(20):
        mac = yealink_mac(0x4C1000 + n)
        agent = ua(mac) + " " + "x" * 60_000
        await clients.get("127.0.1.99", stack.url(f"{mac}.cfg"), {"User-Agent": agent})
        if n % 4 == 3:
            await stack.activity.flush()
    await stack.activity.flush()
    listed = (await stack.api.ok("GET", "/api/v1/unprovisioned?limit=100"))["items"]
    macs = {row["mac"].replace(":", "") for row in listed}
    assert len(listed) == 6
    assert set(real) <= macs
    assert max(len(row["user_agent"] or "") for row in listed) <= 256
