"""Screenshots of the console's main screens, at 1280x800 and at tablet size (820x1180).

Run in every test run (so the screens they show keep working); the pictures go to a temporary
folder unless PROVISIOND_SCREENSHOTS=docs, which writes the README's images in docs/img/:

    PROVISIOND_SCREENSHOTS=docs .venv/bin/pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.conftest import DESKTOP, TABLET, Console
from tests.browser.test_console import open_user
from tests.serve_process import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails first, with the install hint
    expect = None  # type: ignore[assignment]

SHOTS = {
    "console-signin.png": DESKTOP,
    "console-user.png": DESKTOP,
    "console-devices.png": DESKTOP,
    "console-unprovisioned.png": DESKTOP,
    "console-tablet.png": TABLET,
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def scene(console: Console) -> int:
    """Users, devices, licences and two phones that booted unknown; Mario Rossi's id."""
    console.call("PUT", "/licences", {"USER_CLIENT": 5, "MCS_USERS": 0})
    mario = console.user(
        "mrossi", "200", display_name="Mario Rossi", client={"enabled": True, "web_phone": True}
    )
    anna = console.user("abianchi", "300", display_name="Anna Bianchi")
    console.user("gverdi", "400", display_name="Giuseppe Verdi")
    console.user("lneri", "500", display_name="Luca Neri", cli_custom="0612345678")
    console.device("200", "00:15:65:3a:10:01", user_id=mario["id"])
    console.call(
        "POST",
        "/devices",
        {"extension": "202", "model": "snom-d785", "mac": "000413922D24", "user_id": mario["id"]},
    )
    console.call(
        "POST", "/devices", {"extension": "201", "model": "yealink-t54w", "mac": "001565aa0201"}
    )
    console.call(
        "POST", "/devices", {"extension": "203", "model": "polycom-vvx-450", "mac": "0004f2aa0203"}
    )
    console.device("300", "00:15:65:3a:10:30", user_id=anna["id"])
    for mac, model, firmware in [
        ("00:15:65:3a:10:01", "T46S", "66.86.0.15"),
        ("00:15:65:7c:22:91", "T54W", "96.86.0.70"),
        ("00:15:65:7c:22:92", "T46S", "66.86.0.15"),
    ]:
        console.phone_boot(mac, model, firmware)
    console.wait_for(
        "the phones' activity",
        lambda: (
            console.call("GET", "/unprovisioned")["total"] == 2
            and console.call("GET", "/devices?extension_prefix=200")["items"][0]["last_seen"]
            is not None
        ),
    )
    return int(mario["id"])


def test_screenshots(browser: Browser, console: Console, tmp_path: Path) -> None:
    """Take each main screen; each picture has the intended size."""
    folder = (
        REPO / "docs" / "img" if os.environ.get("PROVISIOND_SCREENSHOTS") == "docs" else tmp_path
    )
    folder.mkdir(parents=True, exist_ok=True)
    mario = scene(console)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(console.url)
        page.screenshot(path=folder / "console-signin.png")
        open_user(page, console, mario)
        desktop_screens(page, folder)
        page.set_viewport_size(TABLET)
        page.reload()
        expect(page.locator("#device-rows tr")).to_have_count(2)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=folder / "console-tablet.png")
    finally:
        context.close()
    for name, viewport in SHOTS.items():
        assert png_size(folder / name) == (viewport["width"], viewport["height"]), name


def desktop_screens(page: Page, folder: Path) -> None:
    """The user form with a licence refusal, the devices panel, the claim form."""
    page.get_by_label("Enable Team App").check()
    page.get_by_role("button", name="Save user").click()
    expect(page.locator("#err-team_app-enabled")).to_contain_text("APP_USERS")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=folder / "console-user.png")
    page.get_by_label("Enable Team App").uncheck()

    page.get_by_role("button", name="Make 202 the primary device").click()
    expect(page.get_by_label("Main extension")).to_have_value("202")
    search = page.get_by_role("combobox", name="Extension")
    search.press_sequentially("20")
    listbox = page.get_by_role("listbox", name="Matching devices")
    expect(listbox.get_by_role("option")).to_have_count(4)
    search.press("ArrowDown")
    search.press("ArrowDown")
    page.locator("#devices-panel").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('devices-panel').scrollIntoView()")
    page.screenshot(path=folder / "console-devices.png")
    search.press("Escape")

    page.get_by_role("button", name="Claim 00:15:65:7c:22:91 for Mario Rossi").click()
    expect(page.get_by_role("button", name="Claim for Mario Rossi")).to_be_focused()
    page.evaluate("document.getElementById('unprov-panel').scrollIntoView({block: 'end'})")
    page.screenshot(path=folder / "console-unprovisioned.png")
