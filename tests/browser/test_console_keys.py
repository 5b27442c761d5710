"""The web console and programmable keys (issue 16), in real Chromium against a real server.

A device row of the open user opens its keys: what the phone shows (the user's keys with the
device's own over them, within the model), the model's capacity, and two lists edited and saved
whole: the device's own keys and the user's keys. A refusal (a position beyond the phone) is
shown next to the key it names and nothing is stored; labels are text, never markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.browser.conftest import DESKTOP, TABLET, Console
from tests.browser.test_console import open_user

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails first, with the install hint
    expect = None  # type: ignore[assignment]

DEVICE_LIST = "Device's own keys"
USER_LIST = "User's keys (follow the user onto every phone)"


def open_keys(page: Page, console: Console, user_id: int, extension: str) -> Locator:
    """Open the user's page and the keys of one of their devices; the keys group once loaded."""
    open_user(page, console, user_id)
    toggle = page.get_by_role("button", name=f"Keys of {extension}", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("group", name=f"Keys of {extension}", exact=True)
    expect(panel.get_by_role("group", name=DEVICE_LIST)).to_be_visible()
    return panel


def capacity_text(view: dict[str, Any]) -> str:
    """How the console states a model's capacity, from GET /devices/{id}/keys."""

    def count(number: int, word: str) -> str:
        return f"{number} {word}{'' if number == 1 else 's'}"

    return (
        f"{count(view['capacity'], 'key')}: {view['line_keys']} on the phone + "
        f"{count(view['expansion_modules'], 'module')} x {view['module_keys']}"
    )


def fill_key(
    editor: Locator, noun: str, n: int, position: int, kind: str, value: str, label: str
) -> None:
    """Fill key n (from 1) of a list with `noun` "device" or "user"."""
    editor.get_by_label(f"Position of {noun} key {n}", exact=True).fill(str(position))
    editor.get_by_label(f"Type of {noun} key {n}", exact=True).select_option(kind)
    editor.get_by_label(f"Value of {noun} key {n}", exact=True).fill(value)
    editor.get_by_label(f"Label of {noun} key {n}", exact=True).fill(label)


def shown(panel: Locator) -> list[list[str]]:
    """The "On the phone" table: one list of cell texts per key."""
    rows = panel.get_by_role("region", name="On the phone").locator("tbody tr")
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()]


def stored(console: Console, path: str) -> list[tuple[Any, ...]]:
    """The stored keys at /devices/{id}/keys or /users/{id}/keys, as tuples."""
    items = console.call("GET", path)["items"]
    return [(k["position"], k["type"], k["value"], k["label"]) for k in items]


def error_of(page: Page, control: Locator) -> Locator:
    """The refusal element a control names in aria-describedby."""
    return page.locator(f"#{control.get_attribute('aria-describedby')}")


def test_set_device_and_user_keys_through_the_console(page: Page, console: Console) -> None:
    """User's keys (inherited) and device keys over them: entered out of order, saved and
    stored by position, shown with their source; removing one shows the user's key again."""
    mario = console.user("mrossi", "200", display_name="Mario Rossi")
    console.user("lverdi", "201", display_name="Luigi Verdi")
    device = console.device("200", "00:15:65:00:00:01", user_id=mario["id"])
    view = console.call("GET", f"/devices/{device['id']}/keys")
    assert view["capacity"] > 5
    panel = open_keys(page, console, mario["id"], "200")
    expect(panel).to_contain_text(capacity_text(view))
    expect(panel).to_contain_text("The phone shows no programmed keys.")
    status = panel.get_by_role("status")

    # The user's keys: a line key (its slot defaults to 1) and a BLF of Luigi.
    users = panel.get_by_role("group", name=USER_LIST)
    expect(users).to_contain_text("The user has no keys.")
    users.get_by_role("button", name="Add user key").click()
    expect(users.get_by_label("Position of user key 1", exact=True)).to_be_focused()
    fill_key(users, "user", 1, 1, "line", "", "Mario")
    users.get_by_role("button", name="Add user key").click()
    expect(users.get_by_label("Position of user key 2", exact=True)).to_have_value("2")
    fill_key(users, "user", 2, 2, "blf", "201", "Luigi")
    users.get_by_role("button", name="Save user's keys").click()
    expect(status).to_contain_text("User's keys saved: 2 keys")
    assert stored(console, f"/users/{mario['id']}/keys") == [
        (1, "line", "1", "Mario"),
        (2, "blf", "201", "Luigi"),
    ]
    expect(panel.get_by_role("region", name="On the phone").locator("tbody tr")).to_have_count(2)
    assert shown(panel) == [
        ["1", "Line", "1", "Mario", "Inherited from the user"],
        ["2", "BLF (busy lamp)", "201", "Luigi", "Inherited from the user"],
    ]

    # The device's own keys, typed out of order: saved (and shown) by position.
    own = panel.get_by_role("group", name=DEVICE_LIST)
    own.get_by_role("button", name="Add device key").click()
    kinds = own.get_by_label("Type of device key 1", exact=True).locator("option")
    expect(kinds).to_have_count(len(view["key_types"]))
    fill_key(own, "device", 1, 5, "speed_dial", "0039061234", "Office")
    own.get_by_role("button", name="Add device key").click()
    fill_key(own, "device", 2, 2, "dnd", "", "Quiet")
    own.get_by_role("button", name="Save device keys").click()
    expect(status).to_have_text("Own keys of 200 saved: 2 keys.")
    assert stored(console, f"/devices/{device['id']}/keys") == [
        (2, "dnd", "", "Quiet"),
        (5, "speed_dial", "0039061234", "Office"),
    ]
    expect(own.get_by_label("Position of device key 1", exact=True)).to_have_value("2")
    expect(own.get_by_label("Type of device key 1", exact=True)).to_have_value("dnd")
    expect(own.get_by_label("Position of device key 2", exact=True)).to_have_value("5")
    expect(panel.get_by_role("region", name="On the phone").locator("tbody tr")).to_have_count(3)
    assert shown(panel) == [
        ["1", "Line", "1", "Mario", "Inherited from the user"],
        ["2", "Do not disturb", "", "Quiet", "Device's own"],
        ["5", "Speed dial", "0039061234", "Office", "Device's own"],
    ]

    # Removing the device's key at 2: the user's BLF is back on the phone.
    own.get_by_role("button", name="Remove device key 1").click()
    expect(own.get_by_label("Position of device key 1", exact=True)).to_have_value("5")
    expect(own.get_by_label("Position of device key 2", exact=True)).to_have_count(0)
    own.get_by_role("button", name="Save device keys").click()
    expect(status).to_have_text("Own keys of 200 saved: 1 key.")
    assert stored(console, f"/devices/{device['id']}/keys") == [
        (5, "speed_dial", "0039061234", "Office")
    ]
    expect(panel.get_by_role("region", name="On the phone").locator("tbody tr")).to_have_count(3)
    assert shown(panel)[1] == ["2", "BLF (busy lamp)", "201", "Luigi", "Inherited from the user"]

    # Closing and opening again reads the stored keys.
    page.get_by_role("button", name="Keys of 200", exact=True).click()
    expect(panel).to_have_count(0)
    page.get_by_role("button", name="Keys of 200", exact=True).click()
    expect(own.get_by_label("Label of device key 1", exact=True)).to_have_value("Office")
    expect(users.get_by_label("Value of user key 2", exact=True)).to_have_value("201")


def test_a_position_beyond_the_phone_is_refused_and_nothing_is_stored(
    page: Page, console: Console
) -> None:
    """Capacity + 1 on the device's list and on the user's: the API's refusal next to that
    key's position, the stored keys unchanged; the last position is taken."""
    mario = console.user("mrossi", "200", display_name="Mario Rossi")
    device = console.device("200", "00:15:65:00:00:02", user_id=mario["id"])
    keep = [{"position": 1, "type": "speed_dial", "value": "100", "label": "Keep"}]
    console.call("PUT", f"/devices/{device['id']}/keys", {"keys": keep})
    cap = int(console.call("GET", f"/devices/{device['id']}/keys")["capacity"])
    panel = open_keys(page, console, mario["id"], "200")
    own = panel.get_by_role("group", name=DEVICE_LIST)
    expect(own.get_by_label("Label of device key 1", exact=True)).to_have_value("Keep")

    own.get_by_role("button", name="Add device key").click()
    fill_key(own, "device", 2, cap + 1, "speed_dial", "123", "Too far")
    own.get_by_role("button", name="Save device keys").click()
    position = own.get_by_label("Position of device key 2", exact=True)
    error = error_of(page, position)
    expect(error).to_contain_text(f"keys[1].position {cap + 1} is beyond the model")
    expect(error).to_contain_text(f"has {cap} key positions")
    expect(error).to_have_attribute("role", "alert")
    expect(position).to_have_attribute("aria-invalid", "true")
    expect(position).to_be_focused()
    # Right below the key it is about.
    key_row = own.locator("tr[data-key]").nth(1)
    expect(key_row.locator("xpath=following-sibling::tr[1]")).to_contain_text("is beyond")
    expect(panel.get_by_role("status")).to_have_text("")
    after = console.call("GET", f"/devices/{device['id']}/keys")
    assert [k["label"] for k in after["items"]] == ["Keep"]
    assert [k["label"] for k in after["effective"]] == ["Keep"]
    assert shown(panel) == [["1", "Speed dial", "100", "Keep", "Device's own"]]

    # The user's keys follow them onto every phone: beyond the largest one is refused too.
    users = panel.get_by_role("group", name=USER_LIST)
    users.get_by_role("button", name="Add user key").click()
    fill_key(users, "user", 1, cap + 1, "park", "", "Park")
    users.get_by_role("button", name="Save user's keys").click()
    user_position = users.get_by_label("Position of user key 1", exact=True)
    expect(error_of(page, user_position)).to_contain_text(
        f"keys[0].position {cap + 1} is beyond every phone"
    )
    assert stored(console, f"/users/{mario['id']}/keys") == []

    # No sideways scrolling at tablet width with the keys and a refusal shown.
    page.set_viewport_size(TABLET)
    width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"horizontal scroll at tablet width: {width}"
    page.set_viewport_size(DESKTOP)

    # Typing fixes it: the message goes; the last position is accepted.
    position.fill(str(cap))
    expect(error).to_have_text("")
    expect(position).not_to_have_attribute("aria-invalid", "true")
    own.get_by_role("button", name="Save device keys").click()
    expect(panel.get_by_role("status")).to_have_text("Own keys of 200 saved: 2 keys.")
    assert stored(console, f"/devices/{device['id']}/keys") == [
        (1, "speed_dial", "100", "Keep"),
        (cap, "speed_dial", "123", "Too far"),
    ]


def test_labels_with_markup_are_shown_as_text(page: Page, console: Console) -> None:
    """`<script>` and `&` in labels (typed in the console, or stored through the API) are
    shown verbatim and never become markup."""
    script = "<script>window.__pwned = 1</script>"
    markup = 'Sales & <b>Support</b> &amp; <img src=x onerror="window.__pwned=2">'[:64]
    mario = console.user("mrossi", "200", display_name="Mario Rossi")
    device = console.device("200", "00:15:65:00:00:03", user_id=mario["id"])
    user_keys = [{"position": 1, "type": "speed_dial", "value": "555", "label": markup}]
    console.call("PUT", f"/users/{mario['id']}/keys", {"keys": user_keys})
    panel = open_keys(page, console, mario["id"], "200")
    users = panel.get_by_role("group", name=USER_LIST)
    expect(users.get_by_label("Label of user key 1", exact=True)).to_have_value(markup)

    own = panel.get_by_role("group", name=DEVICE_LIST)
    own.get_by_role("button", name="Add device key").click()
    fill_key(own, "device", 1, 2, "url", "https://intranet.example/?a=1&b=2", script)
    own.get_by_role("button", name="Save device keys").click()
    expect(panel.get_by_role("status")).to_have_text("Own keys of 200 saved: 1 key.")
    (key,) = console.call("GET", f"/devices/{device['id']}/keys")["items"]
    assert key["label"] == script
    labels = panel.get_by_role("region", name="On the phone").locator("td.label")
    expect(labels).to_have_text([markup, script])
    assert shown(panel)[1][2] == "https://intranet.example/?a=1&b=2"
    expect(own.get_by_label("Label of device key 1", exact=True)).to_have_value(script)
    # Nothing became an element: no script, bold or image in the keys, nothing ran.
    assert panel.locator("script, b, img").count() == 0
    assert page.locator("script").count() == 1  # the console's own module
    assert page.evaluate("window.__pwned") is None
