"""Site policies end to end: sites made through the admin API, real clients on real sockets.

Every policy is checked on the three kinds of files a phone asks for: the vendor's common or
model file (no secrets: served to anyone not banned), the per-device boot file (no secrets:
served inside the site) and the per-device file with the SIP password (served only with the
policy's proof). Clients send from chosen loopback addresses, so "inside the site" and "another
network" are real source addresses (127.0.0.2 and 127.0.0.3).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from provisiond.frontends.tls import server_ssl_context
from tests.integration import security_fixtures
from tests.integration.security_fixtures import (
    COMMON_FILE,
    NOT_FOUND,
    PHONE,
    REFUSED,
    SERVED,
    TRANSPORTS,
    WALKER,
    HttpClients,
    Known,
    SecureStack,
    StackFactory,
    authorization,
    challenge_params,
    curl,
    fetcher,
    leaks,
    pick,
    tftp_get,
    yealink_mac,
)
from tests.tls_material import Pki, make_pki

secure_stack = security_fixtures.secure_stack
clients = security_fixtures.clients

INSIDE, OUTSIDE = WALKER, PHONE  # for the single-site tests: 127.0.0.2 in, 127.0.0.3 out
MAC = yealink_mac(0x200001)
OTHER_MAC = yealink_mac(0x200002)
SHARED_FILES = (COMMON_FILE, "y000000000000.cfg", "y000000000000.boot")


def ua(model: str = "T46S", mac: str = MAC) -> str:
    """A Yealink User-Agent for `model` naming `mac`."""
    pairs = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    return f"Yealink SIP-{model} 66.86.0.15 {pairs}"


async def check_shared_files(stack: SecureStack, clients: HttpClients, source: str) -> None:
    """The common and model files are served to `source` over HTTP and TFTP, without secrets."""
    for name in SHARED_FILES:
        answer = await clients.get(source, stack.url(name))
        assert answer.status == 200, (name, answer)
        download = await tftp_get(stack, name, source)
        assert download.error is None, (name, download.error)
        assert download.data == answer.body


async def device_pair(stack: SecureStack) -> tuple[Known, Known]:
    """The test's device and a second one (another MAC of the same OUI)."""
    return await stack.device(1, MAC), await stack.device(2, OTHER_MAC)


# -- open --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_site_means_the_open_default_site(
    secure_stack: StackFactory, clients: HttpClients, transport: str
) -> None:
    """With no site configured, loopback is inside the implicit default site (policy open)."""
    stack = await secure_stack()
    device, _ = await device_pair(stack)
    got = await fetcher(transport, stack, clients)(device.file, OUTSIDE)
    assert got.kind == SERVED
    assert device.sip_password.encode() in got.body


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_open_site_is_a_network_allow_list(
    secure_stack: StackFactory, clients: HttpClients, transport: str
) -> None:
    """Inside the site's networks a known device's files are served; once a site exists,
    a source outside every site gets no per-device file; common files are served to both."""
    stack = await secure_stack()
    await stack.site("office", [f"{INSIDE}/32"], "open")
    device, other = await device_pair(stack)
    get = fetcher(transport, stack, clients)

    inside = await get(device.file, INSIDE)
    assert inside.kind == SERVED
    assert device.sip_password.encode() in inside.body
    boot = await get(device.boot, INSIDE)
    assert boot.kind == SERVED
    assert leaks([boot.body], [device]) == []

    refused = [await get(name, OUTSIDE) for name in (device.file, device.boot, other.file)]
    assert [got.kind for got in refused] == [REFUSED] * 3
    assert leaks([got.body for got in refused], [device, other]) == []
    await check_shared_files(stack, clients, OUTSIDE)
    await check_shared_files(stack, clients, INSIDE)


# -- digest ------------------------------------------------------------------------------


async def digest_site(secure_stack: StackFactory, **security: object) -> SecureStack:
    """A stack whose one site (127.0.0.0/29) asks for digest credentials."""
    stack = await secure_stack(**security)
    await stack.site("branch", ["127.0.0.0/29"], "digest")
    return stack


async def test_digest_site_per_device_files_need_credentials(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """No credentials: 401 over HTTP and an access violation over TFTP for the device file,
    and 401 for the boot file too (served without proof it would tell a known MAC from an
    unknown one, which gets the challenge); the common files are served; another device's valid
    credentials do not open this device's file; curl --digest (SHA-256) gets both files."""
    stack = await digest_site(secure_stack)
    device, other = await device_pair(stack)

    plain = await clients.get(INSIDE, stack.url(device.file))
    assert plain.status == 401
    assert [challenge_params(c)["algorithm"] for c in plain.challenges] == ["SHA-256", "MD5"]
    tftp = await tftp_get(stack, device.file, INSIDE)
    assert tftp.error is not None
    assert tftp.error[0] == security_fixtures.ACCESS_VIOLATION
    boot = await clients.get(INSIDE, stack.url(device.boot))
    assert boot.status == 401
    unknown = await clients.get(INSIDE, stack.url(f"{yealink_mac(0x2000FF)}.boot"))
    assert (unknown.status, unknown.body) == (boot.status, boot.body)
    await check_shared_files(stack, clients, INSIDE)

    header = authorization(
        pick(plain.challenges, "SHA-256"),
        other.mac,
        other.provisioning_password,
        f"/{device.file}",
    )
    borrowed = await clients.get(INSIDE, stack.url(device.file), {"Authorization": header})
    assert borrowed.status == 401
    assert leaks([plain.body, boot.body, borrowed.body, tftp.data], [device, other]) == []

    status, body = await curl(
        stack.url(device.file), "--digest", "--user", f"{device.mac}:{device.provisioning_password}"
    )
    assert status == 200
    assert device.sip_password.encode() in body
    credentials = f"{device.mac}:{device.provisioning_password}"
    status, body = await curl(stack.url(device.boot), "--digest", "--user", credentials)
    assert (status, body.startswith(b"#!version")) == (200, True)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
async def test_digest_site_accepts_each_algorithm_and_refuses_replays(
    secure_stack: StackFactory, clients: HttpClients, algorithm: str
) -> None:
    """A client answering the SHA-256 or the MD5 challenge gets the file; the same
    Authorization header sent again is refused (401, stale) with no file."""
    stack = await digest_site(secure_stack)
    device, _ = await device_pair(stack)
    url, uri = stack.url(device.file), f"/{device.file}"
    challenge = await clients.get(INSIDE, url)
    header = authorization(
        pick(challenge.challenges, algorithm), device.mac, device.provisioning_password, uri
    )
    granted = await clients.get(INSIDE, url, {"Authorization": header})
    assert granted.status == 200
    assert device.sip_password.encode() in granted.body

    replayed = await clients.get(INSIDE, url, {"Authorization": header})
    assert replayed.status == 401
    assert all(challenge_params(c)["stale"] == "true" for c in replayed.challenges)
    assert leaks([replayed.body], [device]) == []


async def test_md5_only_site_with_curl(secure_stack: StackFactory) -> None:
    """`digest_algorithms = ["MD5"]` (for phones that read only the first challenge): curl
    --digest then authenticates with MD5."""
    stack = await digest_site(secure_stack, digest_algorithms=("MD5",))
    device, _ = await device_pair(stack)
    status, _ = await curl(stack.url(device.file), "--head", source=INSIDE)
    assert status == 401
    status, body = await curl(
        stack.url(device.file),
        "--digest",
        "--user",
        f"{device.mac}:{device.provisioning_password}",
        source=INSIDE,
    )
    assert status == 200
    assert device.sip_password.encode() in body


# -- certificate -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, the server's certificate, and phone certificates naming MAC and OTHER_MAC."""
    made = make_pki(tmp_path_factory.mktemp("pki"))
    made.issue_client("phone", [(NameOID.COMMON_NAME, MAC)])
    made.issue_client("other-phone", [(NameOID.COMMON_NAME, OTHER_MAC)])
    return made


def cert_options(pki: Pki, name: str | None) -> list[str]:
    """curl options: trust the test CA; present the named client certificate, if any."""
    options = ["--cacert", str(pki.ca_cert)]
    if name is not None:
        directory: Path = pki.directory
        options += [
            "--cert",
            str(directory / f"{name}.crt"),
            "--key",
            str(directory / f"{name}.key"),
        ]
    return options


async def test_certificate_site_needs_the_devices_own_certificate(
    secure_stack: StackFactory, clients: HttpClients, pki: Pki
) -> None:
    """HTTPS with a client certificate naming the device's MAC gets the file; another MAC's
    certificate, no certificate, plain HTTP or TFTP are refused; common files are served."""
    tls = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    stack = await secure_stack(tls=tls)
    await stack.site("secure", ["127.0.0.0/29"], "certificate")
    device, _ = await device_pair(stack)
    url = stack.url(device.file, https=True)

    status, body = await curl(url, *cert_options(pki, "phone"))
    assert status == 200
    assert device.sip_password.encode() in body

    refused = [
        await curl(url, *cert_options(pki, "other-phone")),
        await curl(url, *cert_options(pki, None)),
        await curl(stack.url(device.file)),
    ]
    assert [status for status, _ in refused] == [403, 403, 403]
    tftp = await tftp_get(stack, device.file, PHONE)
    assert tftp.error is not None
    assert tftp.error[0] == security_fixtures.ACCESS_VIOLATION
    assert leaks([body for _, body in refused] + [tftp.data], [device]) == []

    for name in SHARED_FILES:
        assert (await curl(stack.url(name, https=True), *cert_options(pki, None)))[0] == 200
    await check_shared_files(stack, clients, PHONE)


# -- lock on first boot ------------------------------------------------------------------


async def two_locking_sites(secure_stack: StackFactory) -> tuple[SecureStack, int, int, Known]:
    """Sites A (127.0.0.2) and B (127.0.0.3), both open with lock_on_first_boot; a device."""
    stack = await secure_stack()
    site_a = await stack.site("A", [f"{WALKER}/32"], "open", lock=True)
    site_b = await stack.site("B", [f"{PHONE}/32"], "open", lock=True)
    device, _ = await device_pair(stack)
    return stack, site_a["id"], site_b["id"], device


async def locked_to(stack: SecureStack, device: Known) -> int | None:
    """The device's site_id as the admin API shows it (after writing the batch)."""
    await stack.activity.flush()
    view = await stack.api.ok("GET", f"/api/v1/devices/{device.id}")
    locked: int | None = view["site_id"]
    return locked


async def test_lock_on_first_boot_and_release(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """The first boot from site A binds the device to A; site B is refused (HTTP and TFTP)
    with its answer to an unknown MAC (404 in an open site: no oracle) until an admin
    releases the lock; B then provisions and the device is bound to B."""
    stack, site_a, site_b, device = await two_locking_sites(secure_stack)
    http = fetcher("http", stack, clients)
    tftp = fetcher("tftp", stack, clients)

    assert (await http(device.file, WALKER)).kind == SERVED
    assert await locked_to(stack, device) == site_a
    for get in (http, tftp):
        got = await get(device.file, PHONE)
        assert got.kind == NOT_FOUND
        assert leaks([got.body], [device]) == []
    stranger = yealink_mac(0x2000FE)  # a new phone asking for itself: the same answer
    unknown = await clients.get(
        PHONE, stack.url(f"{stranger}.cfg"), {"User-Agent": ua(mac=stranger)}
    )
    assert (unknown.status, unknown.body) == (404, (await http(device.file, PHONE)).body)
    assert (await http(device.file, WALKER)).kind == SERVED, "site A still provisions"

    released = await stack.api.ok("POST", f"/api/v1/devices/{device.id}/release-lock")
    assert released["site_id"] is None
    mine = await tftp(device.file, PHONE)
    assert mine.kind == SERVED
    assert device.sip_password.encode() in mine.body
    assert await locked_to(stack, device) == site_b
    assert (await http(device.file, WALKER)).kind == NOT_FOUND


async def test_release_right_after_first_boot(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """release-lock issued before the activity batch is written (within `interval`, 2 s in
    production) still lets site B provision."""
    stack, _, site_b, device = await two_locking_sites(secure_stack)
    assert (await clients.get(WALKER, stack.url(device.file))).status == 200
    await stack.api.ok("POST", f"/api/v1/devices/{device.id}/release-lock")
    assert (await clients.get(PHONE, stack.url(device.file))).status == 200
    assert await locked_to(stack, device) == site_b


# -- User-Agent consistency --------------------------------------------------------------

SNOM_UA = "snomD785-SIP 10.1.33.33"


async def test_model_check_warn_serves_and_logs(
    secure_stack: StackFactory, clients: HttpClients, caplog: pytest.LogCaptureFixture
) -> None:
    """model_check=warn (the default): a T46S device asked for with a T48G or a Snom
    User-Agent is served, and the mismatch is logged (once a minute at most: gate.QuietLog,
    so that a client cannot fill the disk nor time a known MAC by its log line)."""
    stack = await secure_stack()
    assert stack.settings.security.model_check == "warn"
    device, _ = await device_pair(stack)
    with caplog.at_level(logging.WARNING, logger="provisiond"):
        for agent in (ua("T48G"), SNOM_UA):
            answer = await clients.get(INSIDE, stack.url(device.file), {"User-Agent": agent})
            assert answer.status == 200, agent
            assert device.sip_password.encode() in answer.body
    warnings = [r.getMessage() for r in caplog.records if "model_check=warn" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "T48G" in warnings[0]


async def test_model_check_strict_refuses_other_models(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """model_check=strict: a T48G or a Snom User-Agent for a T46S device is refused, with the
    site's "not for you" (404 in the open default site, as for an unknown MAC); the device's own
    model is served."""
    stack = await secure_stack(model_check="strict")
    device, _ = await device_pair(stack)
    url = stack.url(device.file)
    for agent in (ua("T48G"), SNOM_UA):
        answer = await clients.get(INSIDE, url, {"User-Agent": agent})
        assert answer.status == 404, agent
        assert leaks([answer.body], [device]) == []
    own = await clients.get(INSIDE, url, {"User-Agent": ua("T46S")})
    assert own.status == 200
    assert device.sip_password.encode() in own.body


@pytest.mark.parametrize("model_check", ["warn", "strict"])
async def test_user_agent_mac_must_be_the_paths(
    secure_stack: StackFactory, clients: HttpClients, model_check: str
) -> None:
    """A User-Agent naming another MAC than the path's is refused over HTTP (any model_check),
    with the site's "not for you" answer (404 in an open site); the same request with the
    device's own MAC, or without a User-Agent, is served."""
    stack = await secure_stack(model_check=model_check)
    device, other = await device_pair(stack)
    url = stack.url(device.file)
    lying = await clients.get(INSIDE, url, {"User-Agent": ua("T46S", other.mac)})
    assert lying.status == 404
    assert leaks([lying.body], [device, other]) == []
    for headers in ({"User-Agent": ua("T46S", device.mac)}, None):
        answer = await clients.get(INSIDE, url, headers)
        assert answer.status == 200, headers


async def test_digest_site_phone_uploads_with_its_credentials(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    """A phone inside a digest site uploads (Yealink's `<mac>-local.cfg`) with its own
    credentials: admitted before the body (100-continue) and stored, once. Found by the
    issue-13 attack round: the admission was decided again after the body, and the digest nonce
    count, already used, was refused as a replay (401, nothing stored)."""
    stack = await digest_site(secure_stack)
    device, _ = await device_pair(stack)
    name = f"{device.mac}-local.cfg"
    url, uri = stack.url(name), f"/{name}"
    challenge = await clients.get(INSIDE, url)
    assert challenge.status == 401
    params = pick(challenge.challenges, "SHA-256")
    body = b"# local settings\nlang.gui = Italian\n"
    session = clients.new(INSIDE)
    header = authorization(params, device.mac, device.provisioning_password, uri, method="PUT")
    async with session.put(
        url, data=body, headers={"Authorization": header}, expect100=True
    ) as response:
        assert response.status == 201, await response.text()
    fetch_header = authorization(
        params, device.mac, device.provisioning_password, uri, method="GET", nc=2
    )
    stored = await clients.get(INSIDE, url, {"Authorization": fetch_header})
    assert (stored.status, stored.body) == (200, body)
    replay = clients.new(INSIDE)
    async with replay.put(url, data=b"evil", headers={"Authorization": header}) as response:
        assert response.status == 401  # the same header again: a replay, nothing stored
    again = authorization(params, device.mac, device.provisioning_password, uri, nc=3)
    assert (await clients.get(INSIDE, url, {"Authorization": again})).body == body
