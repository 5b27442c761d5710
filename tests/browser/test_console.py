"""The web console in real Chromium against a real `provisiond serve` (issue 6).

Each test starts its own server (fresh database) and sets the scene through the admin API, then
does in the browser what an administrator does: sign in, find and create users, enable the
Team App (refused, then licensed), add, create, promote and remove devices, claim a phone that
booted without being known, and read its status.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.browser.conftest import DESKTOP, TABLET, Console, missing_prerequisites
from tests.serve_process import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails first, with the install hint
    expect = None  # type: ignore[assignment]


def test_browser_prerequisites_installed() -> None:
    """Chromium and Playwright are here; otherwise this fails with how to install them."""
    assert missing_prerequisites() is None, missing_prerequisites()


def sign_in(page: Page, console: Console, route: str = "") -> None:
    """Open the console (optionally at #/users/ID) and sign in with the admin token."""
    page.goto(console.url + route)
    page.get_by_label("API token").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible()


def open_user(page: Page, console: Console, user_id: int) -> None:
    """Sign in straight onto one user's page."""
    sign_in(page, console, f"#/users/{user_id}")
    expect(page.locator("#user-form")).to_be_visible()


def device_row(page: Page, extension: str) -> Locator:
    """The devices-table row of one extension."""
    return page.locator("#device-rows tr").filter(
        has=page.locator("td.ext", has_text=re.compile(f"^{extension}"))
    )


def test_sign_in_token_stays_out_of_urls(page: Page, console: Console) -> None:
    """A wrong token shows an error; the right one is kept in sessionStorage, never in a URL."""
    page.goto(console.url)
    headers = page.request.get(console.url).headers
    assert "default-src 'self'" in headers["content-security-policy"]
    page.get_by_label("API token").fill("pvd_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('provisiond.token')") is None

    page.get_by_label("API token").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user-list-status")).to_have_text("0 users")
    assert page.evaluate("sessionStorage.getItem('provisiond.token')") == console.token
    assert page.get_by_label("API token").input_value() == ""

    page.reload()  # same tab: still signed in
    expect(page.locator("#app")).to_be_visible()
    page.get_by_role("button", name="New user").click()
    page.go_back()
    assert console.token not in page.url
    assert console.seen_urls, "no request was observed"
    assert not [url for url in console.seen_urls if console.token in url]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('provisiond.token')") is None


def test_a_revoked_token_signs_the_console_out(page: Page, console: Console) -> None:
    """When the API stops accepting the token, the console forgets it and says why."""
    sign_in(page, console)
    subprocess.run(
        [sys.executable, "-m", "provisiond.cli", "token", "revoke", "browser-tests"],
        cwd=REPO,
        env=console.server.env,
        check=True,
        capture_output=True,
    )
    page.get_by_label("Search users").fill("anyone")
    expect(page.get_by_role("alert").filter(has_text="no longer accepts")).to_be_visible()
    expect(page.get_by_label("API token")).to_be_focused()
    assert page.evaluate("sessionStorage.getItem('provisiond.token')") is None


def test_search_users_and_create_one(page: Page, console: Console) -> None:
    """The list filters as one types; a new user is saved and opened."""
    console.user("mrossi", "200", display_name="Mario Rossi")
    console.user("abianchi", "300", display_name="Anna Bianchi")
    console.user("gverdi", "400", display_name="Giuseppe Verdi")
    sign_in(page, console)
    users = page.locator("#user-list a")
    expect(users).to_have_count(3)
    page.get_by_label("Search users").fill("bian")
    expect(users).to_have_count(1)
    expect(users.first).to_contain_text("Anna Bianchi")
    page.get_by_label("Search users").fill("400")
    expect(users).to_have_text([re.compile("Giuseppe Verdi")])
    page.get_by_label("Search users").fill("")

    page.get_by_role("button", name="New user").click()
    expect(page.locator("#user-title")).to_have_text("New user")
    expect(page.get_by_label("Username")).to_be_focused()
    page.get_by_label("Username").fill("lneri")
    page.get_by_label("Display name").fill("Luca Neri")
    page.get_by_label("Main extension").fill("300")  # Anna's: refused next to the field
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#err-main_extension")).to_contain_text("belongs to another user")
    expect(page.get_by_label("Main extension")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Main extension").fill("500")
    page.get_by_label("Custom CLI").fill("0612345678")
    expect(page.locator("#presented-cli")).to_have_text("0612345678")
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#form-status")).to_have_text("User lneri created.")
    expect(users).to_have_count(4)
    expect(page.locator("#user-list a[aria-current=page]")).to_contain_text("Luca Neri")
    created = console.call("GET", "/users?search=lneri")["items"][0]
    assert (created["main_extension"], created["cli_custom"]) == ("500", "0612345678")
    assert page.url.endswith(f"#/users/{created['id']}")
    expect(page.locator("#devices-panel")).to_be_visible()


def test_team_app_licence_refusal_is_shown_next_to_the_control(
    page: Page, console: Console
) -> None:
    """No APP_USERS licence: refused beside "Enable Team App", naming the module; then licensed."""
    console.call("PUT", "/settings", {"team_app": {"fallback_timeout_s": 25}})
    user = console.user("mrossi", "200", display_name="Mario Rossi")
    open_user(page, console, user["id"])
    expect(page.locator("#default-fallback")).to_have_text("25 s")  # defaults from settings
    expect(page.get_by_label("Fallback timeout (seconds)")).to_have_attribute(
        "placeholder", "25 (default)"
    )
    enable = page.get_by_label("Enable Team App")
    enable.check()
    page.get_by_role("button", name="Save user").click()
    error = page.locator("#err-team_app-enabled")
    expect(error).to_contain_text("APP_USERS")
    expect(error).to_have_attribute("role", "alert")
    # Next to the control: in the same field block, and described by it.
    assert page.evaluate(
        "document.getElementById('err-team_app-enabled').closest('.field')"
        ".contains(document.getElementById('f-team_app-enabled'))"
    )
    expect(enable).to_have_attribute("aria-invalid", "true")
    assert "err-team_app-enabled" in (enable.get_attribute("aria-describedby") or "")
    assert console.call("GET", f"/users/{user['id']}")["team_app"]["enabled"] is False

    console.call("PUT", "/licences", {"APP_USERS": 1})
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#form-status")).to_have_text("Saved.")
    expect(error).to_have_text("")
    expect(page.locator("#lic-APP_USERS")).to_have_text("Licence APP_USERS: 1 of 1 in use")
    assert console.call("GET", f"/users/{user['id']}")["team_app"]["enabled"] is True

    # GSM mode needs a number: the refusal lands on the GSM number field.
    page.get_by_label("GSM mode").check()
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#err-team_app-gsm_number")).to_contain_text("GSM number")
    page.get_by_label("GSM number").fill("+393331234567")
    page.get_by_label("Manual GSM callback").select_option("false")
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#form-status")).to_have_text("Saved.")
    team_app = console.call("GET", f"/users/{user['id']}")["team_app"]
    assert (team_app["gsm_mode"], team_app["gsm_number"]) == (True, "+393331234567")
    assert (team_app["callback_enabled"], team_app["fallback_timeout_s"]) == (False, 25)


def test_client_panel_video_needs_web_phone(page: Page, console: Console) -> None:
    """Client options follow their switches; the USER_CLIENT refusal names its module."""
    user = console.user("mrossi", "200")
    open_user(page, console, user["id"])
    video = page.get_by_label("Video calls")
    expect(video).to_be_disabled()
    page.get_by_label("Enable Client").check()
    expect(video).to_be_disabled()
    page.get_by_label("Web phone").check()
    video.check()
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#err-client-enabled")).to_contain_text("USER_CLIENT")
    console.call("PUT", "/licences", {"USER_CLIENT": 2})
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#form-status")).to_have_text("Saved.")
    client = console.call("GET", f"/users/{user['id']}")["client"]
    assert client == {
        "enabled": True,
        "smart_working": False,
        "web_phone": True,
        "video_calls": True,
    }


def test_add_existing_device_with_the_keyboard(page: Page, console: Console) -> None:
    """Type "20", arrow down to 201, Enter chooses, "+" adds; another user's device moves."""
    user = console.user("mrossi", "200", display_name="Mario Rossi")
    other = console.user("abianchi", "300", display_name="Anna Bianchi")
    console.device("200", "00:15:65:00:00:01", user_id=user["id"])
    free = console.device("201", "00:15:65:00:00:02")
    console.device("202", "00:15:65:00:00:03")
    taken = console.device("203", "00:15:65:00:00:04", user_id=other["id"])
    console.device("310", "00:15:65:00:00:05")
    open_user(page, console, user["id"])

    search = page.get_by_role("combobox", name="Extension")
    search.press_sequentially("20")
    options = page.get_by_role("listbox", name="Matching devices").get_by_role("option")
    expect(options).to_have_count(4)
    expect(options.nth(0)).to_contain_text("already this user's")
    expect(options.nth(3)).to_contain_text("assigned to Anna Bianchi")
    expect(search).to_have_attribute("aria-expanded", "true")
    search.press("ArrowDown")
    search.press("ArrowDown")
    expect(search).to_have_attribute("aria-activedescendant", f"device-opt-{free['id']}")
    expect(page.locator(f"#device-opt-{free['id']}")).to_have_attribute("aria-selected", "true")
    search.press("Enter")
    expect(search).to_have_value("201")
    expect(search).to_have_attribute("aria-expanded", "false")
    page.get_by_role("button", name="Add device").click()
    expect(device_row(page, "201")).to_have_count(1)
    expect(page.locator("#devices-status")).to_contain_text("201 added")
    assert console.call("GET", f"/devices/{free['id']}")["user_id"] == user["id"]

    # A device of another user: the console asks before moving it (rule 5).
    search.press_sequentially("203")
    expect(options).to_have_count(1)
    search.press("ArrowDown")
    search.press("Enter")
    search.press("Enter")  # Enter again adds, like "+"
    expect(page.locator("#move-text")).to_contain_text("belongs to Anna Bianchi")
    assert console.call("GET", f"/devices/{taken['id']}")["user_id"] == other["id"]
    page.get_by_role("button", name="Move it to this user").click()
    expect(device_row(page, "203")).to_have_count(1)
    assert console.call("GET", f"/devices/{taken['id']}")["user_id"] == user["id"]


def test_create_device_with_a_catalogue_model(page: Page, console: Console) -> None:
    """The model list is the catalogue; a bad MAC is refused beside its field."""
    user = console.user("mrossi", "200")
    open_user(page, console, user["id"])
    catalogue = console.call("GET", "/models")
    model = page.get_by_label("Model", exact=True)
    expect(model.locator("option")).to_have_count(len(catalogue) + 1)  # + "Choose a model"
    page.locator("#new-extension").fill("200")
    model.select_option("snom-d785")
    page.get_by_label("MAC address").fill("00:04:13:zz")
    page.get_by_role("button", name="Create and add").click()
    expect(page.locator("#err-new-mac")).not_to_have_text("")
    page.get_by_label("MAC address").fill("000413922D24")
    page.get_by_role("button", name="Create and add").click()
    row = device_row(page, "200")
    expect(row).to_contain_text("Snom D785")
    expect(row).to_contain_text("00:04:13:92:2d:24")
    expect(row).to_contain_text("Primary")  # the first device becomes primary
    expect(row).to_contain_text("Never seen")
    device = console.call("GET", "/devices?mac=000413922D24")["items"][0]
    assert (device["model"], device["user_id"]) == ("snom-d785", user["id"])


def test_a_device_is_bound_to_a_site_from_its_row(page: Page, console: Console) -> None:
    """The Site column shows where the device belongs and changes it through the API."""
    site = console.call(
        "POST", "/sites", {"name": "branch", "networks": ["10.9.0.0/16"], "policy": "digest"}
    )
    user = console.user("mrossi", "200")
    device = console.call(
        "POST",
        "/devices",
        {"extension": "200", "model": "yealink-t46s", "mac": "001565aabbcc", "user_id": user["id"]},
    )
    open_user(page, console, user["id"])
    choice = device_row(page, "200").get_by_label("Site of 200")
    expect(choice).to_have_value("")
    choice.select_option(label="branch (digest)")
    expect(page.locator("#devices-status")).to_have_text("200 now belongs to site branch.")
    assert console.call("GET", f"/devices/{device['id']}")["site_id"] == site["id"]
    choice.select_option("")
    expect(page.locator("#devices-status")).to_have_text("200 now belongs to no site.")
    assert console.call("GET", f"/devices/{device['id']}")["site_id"] is None


def test_primary_with_another_extension_changes_the_main_extension(
    page: Page, console: Console
) -> None:
    """Choosing 202 as primary: the main extension field becomes 202, with old and new shown."""
    user = console.user("mrossi", "200")
    console.device("200", "00:15:65:00:00:01", user_id=user["id"])
    console.device("202", "00:15:65:00:00:02", user_id=user["id"])
    open_user(page, console, user["id"])
    main = page.get_by_label("Main extension")
    expect(main).to_have_value("200")
    page.get_by_role("button", name="Make 202 the primary device").click()
    expect(main).to_have_value("202")
    notice = page.locator("#devices-status")
    expect(notice).to_have_text(re.compile("Main extension changed from 200 to 202"))
    expect(notice).to_have_attribute("role", "status")
    expect(page.locator("#main-ext-change")).to_contain_text("from 200 to 202")
    expect(device_row(page, "202")).to_contain_text("Primary")
    expect(page.locator("#user-list a[aria-current=page]")).to_contain_text("202")
    assert console.call("GET", f"/users/{user['id']}")["main_extension"] == "202"


def test_removing_the_primary_asks_for_the_new_primary_first(page: Page, console: Console) -> None:
    """Remove on the primary opens a choice of successor; nothing changes until it is made."""
    user = console.user("mrossi", "200")
    primary = console.device("200", "00:15:65:00:00:01", user_id=user["id"])
    console.device("202", "00:15:65:00:00:02", user_id=user["id"])
    successor = console.device("204", "00:15:65:00:00:03", user_id=user["id"])
    open_user(page, console, user["id"])
    page.get_by_role("button", name="Remove 200 from this user").click()
    group = page.get_by_role("group", name=re.compile("200 is the primary device"))
    expect(group).to_be_visible()
    choice = page.get_by_label("New primary device", exact=True)
    expect(choice).to_be_focused()
    expect(choice.locator("option")).to_have_count(2)
    assert console.call("GET", f"/devices/{primary['id']}")["user_id"] == user["id"]

    choice.select_option(str(successor["id"]))
    page.get_by_role("button", name="Remove and change primary").click()
    expect(group).to_be_hidden()
    expect(device_row(page, "200")).to_have_count(0)
    expect(device_row(page, "204")).to_contain_text("Primary")
    expect(page.get_by_label("Main extension")).to_have_value("204")
    expect(page.locator("#devices-status")).to_contain_text("from 200 to 204")
    after = console.call("GET", f"/users/{user['id']}")
    assert (after["primary_device_id"], after["main_extension"]) == (successor["id"], "204")

    # A non-primary device goes at once.
    page.get_by_role("button", name="Remove 202 from this user").click()
    expect(device_row(page, "202")).to_have_count(0)


def test_claim_an_unprovisioned_phone_in_two_clicks_then_see_its_status(
    page: Page, console: Console
) -> None:
    """A phone asks for its file unknown; two clicks make it the user's; it boots; status shows."""
    user = console.user("mrossi", "200", display_name="Mario Rossi")
    mac = "00:15:65:12:34:56"
    assert console.phone_boot(mac) == 404
    console.wait_for(
        "the unknown MAC to be listed",
        lambda: any(i["mac"] == mac for i in console.call("GET", "/unprovisioned")["items"]),
    )
    open_user(page, console, user["id"])
    row = page.locator(f"#unprov-rows tr[data-mac='{mac}']")
    expect(row).to_contain_text("Yealink · T46S")
    expect(row).to_contain_text("from 127.0.0.1")

    page.get_by_role("button", name=f"Claim {mac} for Mario Rossi").click()  # click 1
    confirm = page.get_by_role("button", name="Claim for Mario Rossi")
    expect(confirm).to_be_focused()  # extension and model are already filled in
    confirm.click()  # click 2
    expect(page.locator("#unprov-status")).to_contain_text(f"{mac} claimed as 200")
    expect(row).to_have_count(0)
    claimed = device_row(page, "200")
    expect(claimed).to_contain_text(mac)
    expect(claimed).to_contain_text("Yealink T46S")
    device = console.call("GET", f"/devices?mac={mac}")["items"][0]
    assert (device["user_id"], device["model"]) == (user["id"], "yealink-t46s")
    assert console.call("GET", "/unprovisioned")["items"] == []

    # The phone boots again, now known: last seen, IP and firmware appear.
    assert console.phone_boot(mac) == 200
    console.wait_for(
        "the device's last-seen record",
        lambda: console.call("GET", f"/devices/{device['id']}")["last_seen"] is not None,
    )
    page.reload()
    status = device_row(page, "200").locator("td.status")
    expect(status).to_contain_text("Last seen")
    expect(status).to_contain_text("IP 127.0.0.1")
    expect(status).to_contain_text("Firmware 66.86.0.15")


def test_labels_keyboard_and_tablet_layout(browser: Browser, console: Console) -> None:
    """Every control has a label, buttons have names, and 820 px wide needs no sideways scroll."""
    user = console.user("mrossi", "200", display_name="Mario Rossi")
    console.device("200", "00:15:65:00:00:01", user_id=user["id"])
    console.device("202", "00:15:65:00:00:02", user_id=user["id"])
    assert console.phone_boot("00:15:65:ab:cd:ef") == 404
    console.wait_for(
        "the unknown MAC to be listed", lambda: console.call("GET", "/unprovisioned")["total"] == 1
    )
    context = browser.new_context(viewport=TABLET)
    try:
        page = context.new_page()
        sign_in(page, console)
        # Keyboard only: from the search box, Tab past "New user" to the user, Enter opens it.
        page.get_by_label("Search users").focus()
        page.keyboard.type("rossi")
        expect(page.locator("#user-list a")).to_have_count(1)
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(page.locator("#user-list a").first).to_be_focused()
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        expect(page.locator("#user-title")).to_have_text("Mario Rossi")
        expect(page.locator("#device-rows tr")).to_have_count(2)
        expect(page.locator("#unprov-rows tr")).to_have_count(1)

        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select')]
                 .filter((el) => el.labels.length === 0).map((el) => el.id)"""
        )
        assert unlabelled == []
        nameless = page.evaluate(
            """[...document.querySelectorAll('button')]
                 .filter((b) => !(b.getAttribute('aria-label') || b.textContent.trim()))
                 .map((b) => b.outerHTML)"""
        )
        assert nameless == []
        for viewport in (TABLET, DESKTOP):
            page.set_viewport_size(viewport)
            width = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert width[0] <= width[1], f"horizontal scroll at {viewport}: {width}"
    finally:
        context.close()
