"""The attack of issue 4: a client walks Yealink's OUI to harvest SIP passwords. It must fail.

Set-up for every walk: 20 known Yealink devices whose MACs lie inside the walked range, three
of them among the first 20 MACs of the walk, so that without the defences the walker would
reach a device file before any ban. The walker (127.0.0.2) walks 10,000 MACs of 00:15:65
sequentially; the loop stops soon after the ban is observed and then checks that the rest of
the walk would be refused by sending 200 more requests. Every body the walker receives is
kept and searched for every device's SIP and provisioning passwords (as
services.devices.reveal_password tells them). An authorised phone on another address
(127.0.0.3) keeps provisioning throughout, and its file does hold its password, so the search
would find one.

- Open policy, walker outside every site's networks (the internet), or inside the implicit
  default site (no site configured): no per-device file reaches it, unknown MACs are counted,
  the source is banned after `ban_unknown_per_source` unknown MACs; over HTTP and over TFTP
  separately.
- Spread walk: 30 addresses of one /24, 5 unknown MACs each: the /24 is banned.
- Digest policy, walker inside the site: 401 challenges only (one probe cannot tell a known
  MAC from an unknown one), banned after `ban_auth_failures` wrong guesses; the authorised
  phone (curl --digest) is served, and so is a phone with valid credentials behind the banned
  address.

Gaps these tests found, now fixed: a walking source could tell known MACs from unknown ones
under digest (HTTP after its first miss, TFTP always); a lifted address still got no
per-device file for the window; a phone behind a banned NAT that did not already hold a nonce
never got a challenge.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiohttp
import pytest

from tests.integration import security_fixtures
from tests.integration.security_fixtures import (
    COMMON_FILE,
    NOT_FOUND,
    PHONE,
    PROVEN,
    REFUSED,
    SERVED,
    TRANSPORTS,
    WALKER,
    Answer,
    Fetch,
    HttpClients,
    Known,
    SecureStack,
    StackFactory,
    authorization,
    curl,
    fetch,
    fetcher,
    leaks,
    pick,
    tftp_fetcher,
    tftp_get,
    yealink_mac,
)

secure_stack = security_fixtures.secure_stack
clients = security_fixtures.clients

WALK = 10_000  # MACs in the walk (the bound of every walk loop)
WALK_START = 0x100000  # the walk covers 00:15:65:10:00:00 .. 00:15:65:10:27:0f
# Walk positions of the 20 known devices: three before the ban threshold, the rest spread.
KNOWN_AT: tuple[int, ...] = (2, 9, 15, 40, 64, 99, 150, 333, 512, 1000, 1500, 2048, 3000)
KNOWN_AT += (4096, 5000, 6000, 7000, 7777, 8888, 9999)
MORE = 200  # requests sent after the ban was observed, all of which must be refused
UNPROVEN_WALK = 300  # MACs a bare-RRQ TFTP walker tries (never banned: bounded by this)
MARGIN = 5  # requests a ban may take beyond its threshold
SPREAD_SOURCES = [f"127.0.5.{n}" for n in range(1, 31)]
SPREAD_EACH = 5


def walk_macs() -> list[str]:
    """The walker's MACs, in walk order."""
    return [yealink_mac(WALK_START + index) for index in range(WALK)]


async def population(stack: SecureStack) -> list[Known]:
    """The 20 known devices, at KNOWN_AT positions of the walk."""
    macs = walk_macs()
    return [await stack.device(n, macs[index]) for n, index in enumerate(KNOWN_AT)]


# -- the walk over the open policy ---------------------------------------------------------


@dataclass
class Walk:
    """What the walker saw."""

    kinds: list[str]
    bodies: list[bytes]
    known_before_ban: int = 0
    answered_before_ban: int | None = None  # None: never banned within the walk


async def walk_until_banned(get: Fetch, macs: list[str], known: set[str]) -> Walk:
    """Walk `macs` (file ``<mac>.cfg``) from WALKER until banned.

    Per-MAC answers may be refusals from the start (outside every site, unknown and known MACs
    alike get 403: no oracle), so the ban is told by the common file, which only a ban refuses.
    """
    walk = Walk([], [])
    for index, mac in enumerate(macs):
        got = await get(f"{mac}.cfg", WALKER)
        walk.kinds.append(got.kind)
        walk.bodies.append(got.body)
        if mac in known:
            walk.known_before_ban += 1
        if (await get(COMMON_FILE, WALKER)).kind == REFUSED:
            walk.answered_before_ban = index
            break
    return walk


async def bans(stack: SecureStack) -> dict[str, dict[str, object]]:
    """GET /api/v1/bans, by target."""
    listed = await stack.api.ok("GET", "/api/v1/bans")
    return {ban["target"]: ban for ban in listed}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("where", ["outside", "inside"])
async def test_walk_is_banned_and_harvests_nothing(
    secure_stack: StackFactory, clients: HttpClients, transport: str, where: str
) -> None:
    """The walker gets no password, is banned within the threshold, refused cheaply after;
    the ban is listed and liftable; the authorised phone keeps provisioning meanwhile.

    "outside": an `open` site holds only the phone's address, the walker is outside every site
    (the internet). "inside": no site at all, so the implicit default site (loopback among its
    ranges) holds both; the known MACs the walker reaches after its first miss are refused.
    """
    stack = await secure_stack()
    if where == "outside":
        await stack.site("office", [f"{PHONE}/32"], "open")
    known = await population(stack)
    get = fetcher(transport, stack, clients)
    threshold = stack.settings.security.ban_unknown_per_source

    if transport not in PROVEN:
        # Bare RRQs: the source never answers a packet of ours, so its address is unproven
        # (one forged packet each) and nothing is counted: no ban, no sighting. It still gets
        # no file: outside every site nothing per-device is served; inside, its misses mark it
        # as walking for TFTP, so the known MACs it reaches get the unknown MACs' answer.
        walk = await walk_until_banned(get, walk_macs()[:UNPROVEN_WALK], {d.mac for d in known})
        assert walk.answered_before_ban is None
        assert walk.known_before_ban >= 5
        assert set(walk.kinds) == {NOT_FOUND if where == "inside" else REFUSED}, walk.kinds
        assert leaks(walk.bodies, known) == []
        assert await bans(stack) == {}
        await stack.activity.flush()
        assert (await stack.api.ok("GET", "/api/v1/unprovisioned"))["total"] == 0
        return

    walk = await walk_until_banned(get, walk_macs(), {d.mac for d in known})
    assert walk.answered_before_ban is not None, "a 10,000-MAC walk was never banned"
    assert walk.answered_before_ban <= threshold + MARGIN, walk.kinds
    assert walk.known_before_ban >= 1, "the walk must reach a known device before the ban"
    assert SERVED not in walk.kinds, "the walker was served a per-device file"
    assert set(walk.kinds) <= {NOT_FOUND, REFUSED}, walk.kinds

    # The rest of the walk is refused: 200 more MACs, known ones among them, each with the
    # site's answer to an unknown MAC (404 inside the open default site, 403 outside).
    start = walk.answered_before_ban + 1
    rest = [await get(f"{mac}.cfg", WALKER) for mac in walk_macs()[start : start + MORE]]
    assert {got.kind for got in rest} == {NOT_FOUND if where == "inside" else REFUSED}
    assert max(len(got.body) for got in rest) < 64, "a refusal must be cheap"
    assert (await get(COMMON_FILE, WALKER)).kind == REFUSED, "banned: even common files"
    assert leaks(walk.bodies + [got.body for got in rest], known) == []

    # While the walker is banned, the authorised phone on another address is served.
    mine = await get(known[0].file, PHONE)
    assert mine.kind == SERVED
    assert known[0].sip_password.encode() in mine.body

    listed = await bans(stack)
    assert set(listed) == {WALKER}, listed
    assert "unknown-MAC" in str(listed[WALKER]["reason"])
    hits = listed[WALKER]["hits"]
    assert isinstance(hits, int)
    assert hits >= MORE

    # The walker's refused requests leave no trace beyond the threshold's unknown MACs.
    await stack.activity.flush()
    unprovisioned = await stack.api.ok("GET", "/api/v1/unprovisioned")
    assert unprovisioned["total"] <= threshold

    lifted = await stack.api.call("DELETE", f"/api/v1/bans/{WALKER}")
    assert lifted.status == 204, lifted.text
    assert await bans(stack) == {}
    assert (await get(COMMON_FILE, WALKER)).kind == SERVED, "a lifted source is served again"
    # Outside every site an unknown MAC is refused like a known one (no oracle); inside the
    # default site it is simply not found.
    expected = NOT_FOUND if where == "inside" else REFUSED
    assert (await get(f"{yealink_mac(0xABCDEF)}.cfg", WALKER)).kind == expected


async def test_lifted_address_provisions_its_own_phone_again(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """After a walk from inside the (default, open) site and the admin's lift, a phone behind
    the same address asking for its own file is served: the lift says the address is fine."""
    stack = await secure_stack()
    known = await population(stack)
    macs = {d.mac for d in known}
    walk = await walk_until_banned(fetcher("http", stack, clients), walk_macs(), macs)
    assert walk.answered_before_ban is not None
    lifted = await stack.api.call("DELETE", f"/api/v1/bans/{WALKER}")
    assert lifted.status == 204
    mine = await clients.get(WALKER, stack.url(known[-1].file))
    assert mine.status == 200
    assert known[-1].sip_password.encode() in mine.body


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_walk_spread_over_a_24_bans_the_24(
    secure_stack: StackFactory, clients: HttpClients, transport: str
) -> None:
    """30 addresses of 127.0.5.0/24 ask for 5 unknown MACs each: no address reaches its own
    threshold, the /24 is banned within its threshold; other networks are not affected. Every
    per-MAC answer, before and after the ban, is the site's answer to an unknown MAC; the ban
    shows on the common file. Bare TFTP RRQs (unproven sources) never ban a prefix."""
    stack = await secure_stack()
    await stack.site("office", [f"{PHONE}/32", "127.0.5.0/24"], "open")
    phone = await stack.device(0, yealink_mac(0x200000))
    get = fetcher(transport, stack, clients)
    cfg = stack.settings.security
    assert cfg.ban_unknown_per_source > SPREAD_EACH
    assert len(SPREAD_SOURCES) * SPREAD_EACH > cfg.ban_unknown_per_prefix + MARGIN

    kinds: list[str] = []
    bodies: list[bytes] = []
    first: int | None = None
    offset = 0x300000
    for source in SPREAD_SOURCES:
        for _ in range(SPREAD_EACH):
            offset += 1
            got = await get(f"{yealink_mac(offset)}.cfg", source)
            kinds.append(got.kind)
            bodies.append(got.body)
            if first is None and (await get(COMMON_FILE, "127.0.5.250")).kind == REFUSED:
                first = len(kinds)
    assert set(kinds) == {NOT_FOUND}
    assert leaks(bodies, [phone]) == []
    if transport not in PROVEN:
        assert first is None, "forged-able UDP banned a prefix"
        assert await bans(stack) == {}
        return
    assert first is not None, "the spread walk was never banned"
    assert first <= cfg.ban_unknown_per_prefix + MARGIN

    listed = await bans(stack)
    assert set(listed) == {"127.0.5.0/24"}, listed
    assert (await get(COMMON_FILE, "127.0.5.250")).kind == REFUSED, "a fresh address of the /24"
    mine = await get(phone.file, PHONE)
    assert mine.kind == SERVED
    assert phone.sip_password.encode() in mine.body

    lifted = await stack.api.call("DELETE", "/api/v1/bans/127.0.5.0/24")
    assert lifted.status == 204, lifted.text
    assert (await get(COMMON_FILE, "127.0.5.250")).kind == SERVED


# -- the digest policy: the walker is inside the site and guesses credentials ------------


def same_challenge(first: Answer, second: Answer) -> bool:
    """Equal status, body and challenges once each (random) nonce is blanked out."""

    def shape(answer: Answer) -> tuple[int, bytes, list[str]]:
        blank = [re.sub(r'nonce="[^"]*"', 'nonce=""', c) for c in answer.challenges]
        return answer.status, answer.body, blank

    return shape(first) == shape(second)


async def guess(
    clients: HttpClients, stack: SecureStack, mac: str, password: str, source: str = WALKER
) -> tuple[Answer, Answer]:
    """What a guessing client does: ask, then answer the SHA-256 challenge with `password`."""
    uri = f"/{mac}.cfg"
    first = await clients.get(source, stack.url(uri[1:]))
    if first.status != 401:
        return first, first
    header = authorization(pick(first.challenges, "SHA-256"), mac, password, uri)
    second = await clients.get(source, stack.url(uri[1:]), {"Authorization": header})
    return first, second


async def digest_stack(secure_stack: StackFactory) -> tuple[SecureStack, list[Known]]:
    """A digest site over 127.0.0.0/28 (walker, phone and fresh probes); the 20 devices."""
    stack = await secure_stack()
    await stack.site("branch", ["127.0.0.0/28"], "digest")
    return stack, await population(stack)


async def ban_by_guessing(
    clients: HttpClients, stack: SecureStack, known: list[Known]
) -> tuple[int, list[Answer]]:
    """Guess wrong passwords for known MACs until refused: (failed guesses, every answer)."""
    answers: list[Answer] = []
    for attempt in range(WALK):
        device = known[attempt % len(known)]
        first, second = await guess(clients, stack, device.mac, f"guess-{attempt}")
        answers += [first, second]
        # Banned: per-device answers stay the challenge (so a real phone behind the same
        # address can log in, and a banned walker learns nothing); the ban shows on the
        # common file.
        assert (first.status, second.status) == (401, 401), (attempt, first, second)
        if (await clients.get(WALKER, stack.url(COMMON_FILE))).status == 403:
            return attempt, answers
    raise AssertionError("the guessing walk was never banned")


async def test_digest_single_probe_cannot_tell_known_from_unknown(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """No existence oracle for one probe: a fresh source asking for a known MAC gets the same
    401 (status, body, challenges but the nonce) as another asking for an unknown MAC, without
    credentials and with wrong ones."""
    stack, known = await digest_stack(secure_stack)
    unknown = yealink_mac(WALK_START + 1)
    mine, other = await asyncio.gather(
        guess(clients, stack, known[0].mac, "wrong-one", source="127.0.0.4"),
        guess(clients, stack, unknown, "wrong-one", source="127.0.0.5"),
    )
    for a, b in zip(mine, other, strict=True):
        assert a.status == 401, a
        assert pick(a.challenges, "SHA-256")
        assert pick(a.challenges, "MD5")
        assert same_challenge(a, b), (a, b)


async def test_digest_walking_source_cannot_tell_known_from_unknown(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """No existence oracle during a walk: after a miss, known and unknown MACs still get the
    same 401, with and without (wrong) credentials, until the ban."""
    stack, known = await digest_stack(secure_stack)
    first_miss = await clients.get(WALKER, stack.url(f"{yealink_mac(WALK_START + 1)}.cfg"))
    assert first_miss.status == 401
    for device, offset in zip(known[:3], (2, 3, 4), strict=True):
        mine = await guess(clients, stack, device.mac, "wrong-one")
        other = await guess(clients, stack, yealink_mac(WALK_START + offset), "wrong-one")
        for a, b in zip(mine, other, strict=True):
            assert same_challenge(a, b), (a, b)


async def test_digest_guessing_walker_is_banned_and_harvests_nothing(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Wrong guesses get challenges, never a file; banned after `ban_auth_failures`; then
    every request is refused; the authorised phone (real curl --digest) is served."""
    stack, known = await digest_stack(secure_stack)
    threshold = stack.settings.security.ban_auth_failures

    failed, answers = await ban_by_guessing(clients, stack, known)
    assert 1 <= failed <= threshold + MARGIN
    listed = await bans(stack)
    assert set(listed) == {WALKER}, listed
    assert "failed authentications" in str(listed[WALKER]["reason"])

    # Banned: wrong or forged credentials get the challenge again, known or unknown MAC alike
    # (a bare request gets it too: that is how a real phone there logs in); common files 403.
    for index in range(MORE // 4):
        device = known[index % len(known)]
        unknown = yealink_mac(WALK_START + 10 + index)
        for mac in (device.mac, unknown):
            first, second = await guess(clients, stack, mac, f"later-{index}")
            answers += [first, second]
            assert (first.status, second.status) == (401, 401)
            header = authorization(
                {"realm": "provisiond", "nonce": "AAAA", "opaque": "x"}, mac, "x", f"/{mac}.cfg"
            )
            forged = await clients.get(WALKER, stack.url(f"{mac}.cfg"), {"Authorization": header})
            answers.append(forged)
            assert forged.status == 401
    assert (await clients.get(WALKER, stack.url(COMMON_FILE))).status == 403
    assert {a.status for a in answers} <= {401, 403}
    assert leaks([a.body for a in answers], known) == []

    device = known[5]
    status, body = await curl(
        stack.url(device.file), "--digest", "--user", f"{device.mac}:{device.provisioning_password}"
    )
    assert status == 200
    assert device.sip_password.encode() in body


async def test_phone_with_credentials_behind_banned_nat_is_served(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """Authenticated phones are served through a ban; unauthenticated requests from that
    address are refused.

    The phone shares the walker's (NAT) address. It authenticated once before the ban (aiohttp's
    digest middleware keeps the challenge and authenticates later requests preemptively, with a
    growing nonce count), so its next request brings valid credentials and is served although
    the address is banned; the same request without credentials gets 403.
    """
    stack, known = await digest_stack(secure_stack)
    device = known[3]
    digest = aiohttp.DigestAuthMiddleware(device.mac, device.provisioning_password)
    phone = clients.new(WALKER, middlewares=(digest,))
    before = await fetch(phone, stack.url(device.file))
    assert before.status == 200
    assert device.sip_password.encode() in before.body

    await ban_by_guessing(clients, stack, known)
    assert WALKER in await bans(stack)

    after = await fetch(phone, stack.url(device.file))
    assert after.status == 200, "a phone with valid credentials is served through the ban"
    assert device.sip_password.encode() in after.body
    plain = await clients.get(WALKER, stack.url(device.file))
    assert plain.status == 401  # a challenge, nothing else
    assert device.sip_password.encode() not in plain.body


async def test_rebooted_phone_behind_banned_nat_can_authenticate(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """A phone behind the banned NAT that starts afresh (no nonce yet) still provisions.

    Digest is challenge-response: a real client first asks without credentials. The design
    promises that a phone with valid credentials is served through a ban of its NAT address;
    that needs the challenge to reach it.
    """
    stack, known = await digest_stack(secure_stack)
    await ban_by_guessing(clients, stack, known)
    device = known[3]
    status, body = await curl(
        stack.url(device.file),
        "--digest",
        "--user",
        f"{device.mac}:{device.provisioning_password}",
        source=WALKER,
    )
    assert status == 200
    assert device.sip_password.encode() in body


async def test_digest_site_tftp_has_no_existence_oracle(secure_stack: StackFactory) -> None:
    """Over TFTP a digest site serves no per-device file; known and unknown MACs must be
    refused alike, as HTTP answers both with the same challenge."""
    stack, known = await digest_stack(secure_stack)
    mine = await tftp_get(stack, known[0].file, WALKER)
    other = await tftp_get(stack, f"{yealink_mac(WALK_START + 1)}.cfg", WALKER)
    assert mine.data == other.data == b""
    assert mine.error is not None
    assert other.error is not None
    assert mine.error[0] == other.error[0]


async def test_digest_site_tftp_walk_harvests_nothing(secure_stack: StackFactory) -> None:
    """The TFTP walk inside a digest site: no file with secrets; a walker whose address is
    proven (it ACKs our OACK) is banned within the threshold."""
    stack, known = await digest_stack(secure_stack)
    get = tftp_fetcher(stack, blksize="1024")
    threshold = stack.settings.security.ban_unknown_per_source
    walk = await walk_until_banned(get, walk_macs(), {d.mac for d in known})
    assert walk.answered_before_ban is not None
    assert walk.answered_before_ban <= threshold + MARGIN
    assert SERVED not in walk.kinds
    assert leaks(walk.bodies, known) == []
