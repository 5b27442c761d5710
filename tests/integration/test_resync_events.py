"""The NOTIFY each vendor's phone is sent, checked by sipp against the vendor's document.

The table below is written from the vendors' documents (each cited in
phone_templates/<vendor>/README.md, "Resync"), not read from vendor.toml: a vendor description
that drifts from its document fails here. For one model of every vendor (and of each family
with events of its own), the resync service sends a resync and a reboot to sipp playing the
phone; sipp checks the Event header, the Subscription-State and the body, and exits 1 on any
difference. A family without a resync (Cisco 7940/7960: check-sync reboots them) is never sent
one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.errors import Conflict
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate
from tests.integration.test_resync import _seen, _with_port
from tests.integration.test_sip_notify import SCENARIOS, sipp_uas
from tests.phone_context import catalogue

# model: (resync Event, reboot Event); "" = the model has none.
DOCUMENTED = {
    "yealink-t46s": ("check-sync", "check-sync;reboot=true"),
    "polycom-vvx-410": ("check-sync", "check-sync;reboot=true"),
    "cisco-spa508g": ("resync", "reboot_now"),
    "cisco-cp-8841-3pcc": ("resync", "reboot_now"),
    "cisco-cp-7942": ("service-control", "service-control"),  # the action is in the body
    "cisco-cp-7960": ("", "check-sync"),
    "grandstream-gxp2135": ("resync", "check-sync;reboot=true"),
    "snom-d785": ("check-sync;reboot=false", "check-sync;reboot=true"),
    "fanvil-x4": ("check-sync", "check-sync;reboot=true"),
    "gigaset-n870": ("check-sync;reboot=false", "check-sync;reboot=true"),
    "aastra-6731i": ("check-sync", "check-sync;reboot=true"),
    "panasonic-kx-hdv230": ("check-sync", "check-sync;reboot=true"),
    "htek-uc926": ("check-sync", "check-sync;reboot=true"),
    "alcatel-m3": ("check-sync", "check-sync;reboot=true"),
    "avaya-j179": ("check-sync", ""),  # no NOTIFY reboots it on demand
    "sangoma-d65": ("", "check-sync"),  # check-sync always restarts the phone
    "obihai-obi202": ("", "resync"),  # event=resync reboots it
}
BODIES = {("service-control", False): "action=restart", ("service-control", True): "action=reset"}


def _ere(text: str) -> str:
    """`text` as a POSIX extended regular expression matching itself."""
    return "".join(f"\\{ch}" if ch in ".[]()*+?{}|^$\\" else ch for ch in text)


def _scenario(tmp_path: Path, event: str, reboot: bool) -> Path:
    body = BODIES.get((event, reboot))
    text = (SCENARIOS / "notify_event.xml.in").read_text(encoding="ascii")
    for key, value in {
        "@EVENT@": _ere(event),
        "@STATE@": "active" if event == "service-control" else "terminated",
        "@LENGTH@": str(len(body) + 2) if body else "0",  # the body ends with CRLF
        "@BODY@": f"^{_ere(body)}" if body else "^$",
    }.items():
        text = text.replace(key, value)
    path = tmp_path / f"notify-{'reboot' if reboot else 'resync'}.xml"
    path.write_text(text, encoding="ascii")
    return path


def test_every_vendor_and_family_with_events_of_its_own_is_in_the_table() -> None:
    models = catalogue()
    assert {models[m].vendor for m in DOCUMENTED} == {m.vendor for m in models.values()}
    assert {models[m].family for m in DOCUMENTED if models[m].vendor == "cisco_sep"} == {
        "79x0",
        "sep",
    }


@pytest.mark.parametrize("model", sorted(DOCUMENTED))
async def test_the_documented_event_reaches_the_phone(
    services: Services, tmp_path: Path, model: str
) -> None:
    device = await services.devices.create(
        DeviceCreate(extension="201", model=model, mac="0a0b0c0d0e0f"), "t"
    )
    await _seen(services, device["id"])
    for reboot, event in ((False, DOCUMENTED[model][0]), (True, DOCUMENTED[model][1])):
        if not event:
            with pytest.raises(Conflict, match="has no SIP NOTIFY for this"):
                await services.resync.resync(device["id"], reboot=reboot, actor="t")
            continue
        async with sipp_uas(str(_scenario(tmp_path, event, reboot)), tmp_path) as sipp:
            _with_port(services, sipp.port)
            answer = await services.resync.resync(device["id"], reboot=reboot, actor="t")
        assert answer["status"] == 200, answer
        assert sipp.returncode == 0, (event, reboot, sipp.errors)
