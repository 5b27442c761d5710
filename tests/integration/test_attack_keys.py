"""Attacks on keys and the phone book (issue 16's attack round), kept as tests.

- F1: a phone book title with U+FFFF (or U+2028, a bidirectional override) was accepted and
  written into every Cisco 3PCC, Fanvil and Gigaset device file, which stopped being XML.
- F2: every revision of a rendered phone book stayed in the render cache: each directory
  change followed by a phone book fetch grew the process by a whole book, without bound.
- O1: a URL key kept NUL, ESC and DEL (the files dropped them; the API showed them).
- O2: invisible characters (U+202E, U+200B, U+FEFF) in a label or a name made one name look
  like another on the phones' screens.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import aiohttp
import pytest

from provisiond.domain.errors import InvalidInput
from provisiond.domain.identify import FileKind
from provisiond.domain.keys import check_keys
from provisiond.services.commands import DeviceCreate, UserCreate, UserPatch
from provisiond.storage.database import Database
from tests.dbdump import dump
from tests.integration.api_fixtures import Api
from tests.integration.phone_stack import PhoneStack

CISCO_MAC = "0002fd00f1f1"
CISCO_UA = f"Cisco-CP-8841-3PCC/11.3.7 ({CISCO_MAC})"
BAD_TEXT = (
    "Dir\uffff",
    "Dir\ufffe",
    "Dir\u2028x",
    "Dir\u2029x",
    "\u202eDir",
    "Dir\u200b",
    "\ufeffDir",
)


async def _get(stack: PhoneStack, path: str, ua: str = CISCO_UA) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(headers={"User-Agent": ua}) as http:
        async with http.get(stack.http_url + path) as response:
            return response.status, await response.read()


@pytest.mark.parametrize("title", BAD_TEXT)
async def test_a_title_no_xml_file_can_carry_is_refused(api: Api, title: str) -> None:
    before = await api.ok("GET", "/api/v1/settings")
    answer = await api.call("PUT", "/api/v1/settings", {"phonebook": {"title": title}})
    assert answer.status == 422, answer.text
    assert await api.ok("GET", "/api/v1/settings") == before


async def test_device_files_and_phone_books_stay_xml_with_an_odd_title(
    phone_stack: PhoneStack,
) -> None:
    services = phone_stack.services
    title = 'Rubrica "R&D" <Tèst> \' ]]>'
    await services.platform.put_settings({"phonebook": {"title": title}}, "t")
    await services.devices.create(
        DeviceCreate(extension="4242", model="cisco-cp-8841-3pcc", mac=CISCO_MAC), "t"
    )
    for path in (f"{CISCO_MAC}.xml", f"phonebook/{CISCO_MAC}.xml"):
        status, body = await _get(phone_stack, path)
        assert status == 200
        ET.fromstring(body)  # parses
    _, book = await _get(phone_stack, f"phonebook/{CISCO_MAC}.xml")
    assert ET.fromstring(book).findtext("Title") == title


async def test_phone_book_revisions_do_not_pile_up(phone_stack: PhoneStack) -> None:
    services = phone_stack.services
    resolver = phone_stack.resolver
    user = await services.users.create(
        UserCreate(username="pb", display_name="PB " + "y" * 100, main_extension="6000"), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="4242", model="cisco-cp-8841-3pcc", mac=CISCO_MAC), "t"
    )
    bodies = set()
    for i in range(30):  # a change, then a phone's fetch: each makes a new book
        await services.users.update(user["id"], UserPatch(display_name=f"PB renamed {i}"), "t")
        status, body = await _get(phone_stack, f"phonebook/{CISCO_MAC}.xml")
        assert status == 200
        assert f"PB renamed {i}".encode() in body
        bodies.add(body)
    assert len(bodies) == 30
    assert len(resolver._books) == 1  # the newest book of the one vendor file fetched
    kinds = [key[0] for key in resolver._cache if isinstance(key, tuple)]
    assert FileKind.PHONEBOOK not in kinds


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\x7f", "\u202e", "\u2028"])
def test_a_key_value_refuses_control_characters(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_keys([{"type": "url", "value": f"http://a/x{bad}y"}])
    assert refused.value.field == "keys[0].value"


@pytest.mark.parametrize("bad", ["\u202e", "\u200b", "\ufeff", "\u2066"])
async def test_invisible_characters_are_refused_in_labels_and_names(
    api: Api, db: Database, bad: str
) -> None:
    user = await api.user("rossi", "201")
    before = await dump(db)
    label = await api.call(
        "PUT",
        f"/api/v1/users/{user['id']}/keys",
        {"keys": [{"type": "dnd", "label": f"Anna{bad}Bianchi"}]},
    )
    assert label.status == 422
    assert label.json["field"] == "keys[0].label"
    name = await api.call(
        "PATCH", f"/api/v1/users/{user['id']}", {"display_name": f"Mario{bad}Rossi"}
    )
    assert name.status == 422
    assert await dump(db) == before
