"""A first walk through the product page's flow at the service layer."""

from __future__ import annotations

from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate


async def test_primary_flow(services: Services) -> None:
    user = await services.users.create(
        UserCreate(username="mrossi", display_name="Mario Rossi", main_extension="200"), "test"
    )
    d1 = await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565AABBCC", user_id=user["id"]),
        "test",
    )
    d2 = await services.devices.create(
        DeviceCreate(extension="202", model="snom-d785", mac="00:04:13:92:2d:24"), "test"
    )
    after = await services.assignments.assign(user["id"], d2["id"], move=False, actor="test")
    assert after["primary_device_id"] == d1["id"]
    changed = await services.assignments.set_primary(user["id"], d2["id"], actor="test")
    assert changed["main_extension"] == "202"
    assert changed["main_extension_changed"] == {"old": "200", "new": "202"}
