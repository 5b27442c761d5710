"""Provision under `open`, switch the site to `digest`: every phone keeps provisioning.

docs/security.md tells administrators to let phones boot once under an `open` site and then
require HTTP digest. That only works if the phone learnt its provisioning credentials from the
first file it got, at the keys its firmware reads. For each vendor whose phones authenticate to
a provisioning server (`BootCase.credentials`), over real sockets:

1. under `open`, the device file is served and carries the device's own provisioning user
   name and password at the vendor's documented keys (and no shared/common file carries them);
2. the site is switched to `digest` through the admin API;
3. curl without credentials gets 401; curl ``--digest`` with the user name and password found
   in the phone's own file gets 200 and the same file.
"""

from __future__ import annotations

import pytest

from provisiond.services import Services
from tests.integration import security_fixtures
from tests.integration.boot_sequences import BOOT_CASES, BootCase, Role, provision
from tests.integration.security_fixtures import PHONE, HttpClients, StackFactory, curl

secure_stack = security_fixtures.secure_stack
clients = security_fixtures.clients

CASES = [case for case in BOOT_CASES if case.credentials is not None]
WITHOUT = sorted({case.vendor for case in BOOT_CASES} - {case.vendor for case in CASES})


def test_vendors_without_provisioning_credentials_are_the_documented_ones() -> None:
    """Only phones that fetch over TFTP alone lack HTTP provisioning credentials (README)."""
    assert WITHOUT == ["cisco_sep"]


async def _provisioned(services: Services, case: BootCase) -> tuple[str, str]:
    """Create the case's device; its provisioning (digest) user name and password."""
    device_id = await provision(services, case)
    revealed = await services.devices.reveal_password(device_id, "test")
    return case.mac, revealed["provisioning_password"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_open_then_digest_keeps_the_phone_provisioning(
    secure_stack: StackFactory, clients: HttpClients, case: BootCase
) -> None:
    stack = await secure_stack()
    site = await stack.site("office", ["127.0.0.0/8"], policy="open")
    user, password = await _provisioned(stack.services, case)
    assert case.credentials is not None
    agent = case.user_agent() or ""
    device_url = stack.url(case.path(case.device_path))

    first = await clients.get(PHONE, device_url, headers={"User-Agent": agent})
    assert first.status == 200, first
    assert case.credentials(user, password).mismatches(first.body) == []
    for step in case.gets:
        if step.role in (Role.COMMON, Role.BOOT):
            shared = await clients.get(
                PHONE, stack.url(case.path(step.path)), headers={"User-Agent": agent}
            )
            assert password.encode() not in shared.body, step.path

    await stack.api.ok("PATCH", f"/api/v1/sites/{site['id']}", {"policy": "digest"})

    status, _ = await curl(device_url, "--user-agent", agent, source=PHONE)
    assert status == 401
    status, body = await curl(
        device_url, "--user-agent", agent, "--digest", "--user", f"{user}:{password}", source=PHONE
    )
    assert status == 200
    assert body == first.body
    status, _ = await curl(
        device_url, "--user-agent", agent, "--digest", "--user", f"{user}:x{password}", source=PHONE
    )
    assert status == 401
