"""The web console and device accounts (issue 15), in real Chromium against a real server.

A user's lines are the devices they own and the accounts they own on any device (a DECT
handset on a shared base). The console lists both, makes an account primary (its extension
becomes the main extension), and a multi-account device's row expands to its accounts: add one
in a free slot, see a refusal next to the control it is about, remove one (rule 3 first).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.browser.conftest import DESKTOP, TABLET, Console
from tests.browser.test_console import open_user

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails first, with the install hint
    expect = None  # type: ignore[assignment]

BASE_MODEL = "yealink-w80b"


def line_row(page: Page, extension: str) -> Locator:
    """The row of one line (a device or an account) in the user's lines table."""
    return page.locator("#device-rows > tr").filter(
        has=page.locator("td.ext", has_text=re.compile(f"^{extension}"))
    )


def base(console: Console, extension: str, mac: str, user_id: int | None) -> dict[str, Any]:
    """A Yealink W80B DECT base through the API."""
    body = {"extension": extension, "model": BASE_MODEL, "mac": mac, "user_id": user_id}
    return dict(console.call("POST", "/devices", body))


def slots_of(console: Console, model: str) -> int:
    """The model's account count as GET /api/v1/models answers it."""
    return int(next(m for m in console.call("GET", "/models") if m["id"] == model)["accounts"])


def test_add_an_account_make_it_primary_refuse_a_slot_and_remove_it(
    page: Page, console: Console
) -> None:
    """On the user's DECT base: add account 2 for the user, make it primary, slot N+1 is
    refused naming the limit, remove it (choosing the new primary line first)."""
    user = console.user("mrossi", "200", display_name="Mario Rossi")
    dect = base(console, "200", "00:15:65:80:00:01", user["id"])
    slots = slots_of(console, BASE_MODEL)
    assert slots > 1
    open_user(page, console, user["id"])

    toggle = page.get_by_role("button", name="Accounts of 200")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("group", name="Accounts of 200")
    expect(panel).to_contain_text(f"Yealink W80B carries {slots} SIP accounts")
    accounts = panel.locator("tbody tr")
    expect(accounts).to_have_count(1)  # slot 1: the base itself
    expect(accounts.first).to_contain_text("1 (device)")
    expect(accounts.first).to_contain_text("Mario Rossi (this user)")
    slot = panel.get_by_label("Slot")
    expect(slot).to_have_value("2")  # the next free slot
    expect(panel.get_by_label("Owner")).to_have_value("user")

    # A taken extension is refused next to the Extension field (the API's 409 and its field).
    panel.get_by_label("Extension").fill("200")
    page.get_by_role("button", name="Add account to 200").click()
    extension_error = panel.locator(f"#acc-ext-{dect['id']}-error")
    expect(extension_error).to_contain_text("200")
    expect(panel.get_by_label("Extension")).to_have_attribute("aria-invalid", "true")

    panel.get_by_label("Extension").fill("201")
    expect(extension_error).to_have_text("")
    panel.get_by_label("Label (optional)").fill("Handset 2")
    page.get_by_role("button", name="Add account to 200").click()
    status = page.locator("#devices-status")
    expect(status).to_have_text("Account 2 of 200 added: 201, owner Mario Rossi.")
    row = line_row(page, "201")
    expect(row).to_contain_text("Account 2 of 200")
    expect(row).to_contain_text("Yealink W80B")
    expect(row).to_contain_text("00:15:65:80:00:01")
    expect(accounts).to_have_count(2)  # the panel stays open, now with slot 2
    expect(accounts.nth(1)).to_contain_text("Handset 2")
    expect(slot).to_have_value("3")
    listed = console.call("GET", f"/devices/{dect['id']}/accounts")["items"]
    assert [(a["slot"], a["extension"], a["user_id"]) for a in listed] == [
        (1, "200", user["id"]),
        (2, "201", user["id"]),
    ]

    # The account as the primary line: the main extension follows, and the page says so.
    main = page.get_by_label("Main extension")
    expect(main).to_have_value("200")
    page.get_by_role("button", name="Make 201 the primary line").click()
    expect(main).to_have_value("201")
    expect(status).to_have_text(
        "201 (account 2 of 200) is now the primary line. Main extension changed from 200 to 201."
    )
    expect(page.locator("#main-ext-change")).to_contain_text("from 200 to 201")
    expect(row).to_contain_text("Primary")
    expect(line_row(page, "200")).to_contain_text("Make primary")
    expect(page.locator("#device-rows > tr").first).to_contain_text("201")  # primary first
    after = console.call("GET", f"/users/{user['id']}")
    assert (after["primary_device_id"], after["primary_slot"]) == (dect["id"], 2)
    assert after["main_extension"] == "201"

    # A slot beyond the model's count: refused next to the Slot field, naming the limit.
    slot.fill(str(slots + 1))
    panel.get_by_label("Extension").fill("209")
    page.get_by_role("button", name="Add account to 200").click()
    slot_error = panel.locator(f"#acc-slot-{dect['id']}-error")
    expect(slot_error).to_contain_text(f"{BASE_MODEL} carries {slots} SIP accounts")
    expect(slot_error).to_have_attribute("role", "alert")
    expect(slot).to_have_attribute("aria-invalid", "true")
    assert len(console.call("GET", f"/devices/{dect['id']}/accounts")["items"]) == 2
    # A taken slot is never overwritten.
    slot.fill("2")
    page.get_by_role("button", name="Add account to 200").click()
    expect(slot_error).to_contain_text("Slot 2 is account 201")

    # No sideways scrolling at tablet width with the accounts open.
    page.set_viewport_size(TABLET)
    width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"horizontal scroll at tablet width: {width}"
    page.set_viewport_size(DESKTOP)

    # Removing the primary account: the new primary line is chosen first (rule 3).
    panel.get_by_role("button", name="Remove account 2 of 200").click()
    group = page.get_by_role("group", name=re.compile("201 .* is this user's primary line"))
    expect(group).to_be_visible()
    choice = page.get_by_label("New primary line", exact=True)
    expect(choice).to_be_focused()
    expect(choice.locator("option")).to_have_count(1)
    assert len(console.call("GET", f"/devices/{dect['id']}/accounts")["items"]) == 2
    page.get_by_role("button", name="Remove and change primary").click()
    expect(group).to_be_hidden()
    expect(line_row(page, "201")).to_have_count(0)
    expect(status).to_contain_text("201 (account 2 of 200) removed.")
    expect(status).to_contain_text("200 is now the primary line.")
    expect(main).to_have_value("200")
    expect(line_row(page, "200")).to_contain_text("Primary")
    expect(accounts).to_have_count(1)
    after = console.call("GET", f"/users/{user['id']}")
    assert (after["primary_device_id"], after["primary_slot"], after["main_extension"]) == (
        dect["id"],
        1,
        "200",
    )
    assert after["accounts"] == []


def test_an_account_on_another_users_base_is_one_of_the_users_lines(
    page: Page, console: Console
) -> None:
    """Mario's handset on the reception's base: listed with the base's extension and model,
    made primary with {device_id, slot}, removed from his lines."""
    mario = console.user("mrossi", "200", display_name="Mario Rossi")
    reception = console.user("reception", "500", display_name="Reception")
    console.device("200", "00:15:65:00:00:01", user_id=mario["id"])
    dect = base(console, "500", "00:15:65:80:00:05", reception["id"])
    console.call(
        "PUT",
        f"/devices/{dect['id']}/accounts/3",
        {"extension": "210", "user_id": mario["id"], "label": "Warehouse handset"},
    )
    open_user(page, console, mario["id"])

    rows = page.locator("#device-rows > tr")
    expect(rows).to_have_count(2)
    handset = line_row(page, "210")
    expect(handset).to_contain_text("Account 3 of 500")
    expect(handset).to_contain_text("Warehouse handset")
    expect(handset).to_contain_text("Yealink W80B")
    expect(handset).to_contain_text("00:15:65:80:00:05")
    expect(handset.locator("td.status")).to_have_text("Never seen")  # the base's last-seen
    expect(line_row(page, "200")).to_contain_text("Primary")
    # The base is the reception's: no accounts panel for it here.
    expect(page.get_by_role("button", name="Accounts of 500")).to_have_count(0)

    page.get_by_role("button", name="Make 210 the primary line").click()
    expect(page.get_by_label("Main extension")).to_have_value("210")
    expect(page.locator("#devices-status")).to_contain_text("from 200 to 210")
    expect(handset).to_contain_text("Primary")
    after = console.call("GET", f"/users/{mario['id']}")
    assert (after["primary_device_id"], after["primary_slot"]) == (dect["id"], 3)

    page.get_by_role("button", name="Remove account 3 of 500").click()
    choice = page.get_by_label("New primary line", exact=True)
    expect(choice.locator("option")).to_have_text([re.compile("^200 — Yealink T46S")])
    page.get_by_role("button", name="Remove and change primary").click()
    expect(handset).to_have_count(0)
    expect(rows).to_have_count(1)
    expect(page.get_by_label("Main extension")).to_have_value("200")
    expect(page.locator("#devices-status")).to_have_text(
        "210 (account 3 of 500) removed. 200 is now the primary line. "
        "Main extension changed from 210 to 200."
    )
    accounts = console.call("GET", f"/devices/{dect['id']}/accounts")["items"]
    assert [a["slot"] for a in accounts] == [1]
    assert console.call("GET", f"/users/{reception['id']}")["main_extension"] == "500"
