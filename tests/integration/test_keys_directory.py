"""Keys and the phone book on the phone side: another process's directory (a --workers process)
follows key changes, a BLF following a main extension (one fan-out change), and every change
to a user the phone book shows makes a new phone book revision (its render-cache key)."""

from __future__ import annotations

from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.changes import ChangeFeed
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate, UserPatch

MAC = "001565aabbcc"


async def _follower(services: Services) -> tuple[MemoryDirectory, ChangeFeed]:
    db, settings = services.ctx.db, services.ctx.settings
    directory = MemoryDirectory(db, settings.platform)
    feed = ChangeFeed(db, directory.apply)
    await feed.mark()
    await directory.load()
    return directory, feed


async def _user(services: Services, name: str, extension: str) -> int:
    user = await services.users.create(
        UserCreate(username=name, display_name=name.title(), main_extension=extension), "t"
    )
    return int(user["id"])


async def test_key_changes_and_a_following_blf_reach_another_process(services: Services) -> None:
    rossi = await _user(services, "rossi", "201")
    bianchi = await _user(services, "bianchi", "202")
    await services.devices.create(
        DeviceCreate(extension="201", model="yealink-t46s", mac=MAC, user_id=rossi), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="202", model="yealink-t46s", mac="001565aabb01", user_id=bianchi),
        "t",
    )
    second = await services.devices.create(
        DeviceCreate(extension="222", model="yealink-t46s", mac="001565aabb02", user_id=bianchi),
        "t",
    )
    other, feed = await _follower(services)

    await services.keys.set_user_keys(
        rossi, [{"type": "blf", "value": "202", "label": "Bianchi"}], actor="t"
    )
    await feed.poll()
    device = other.device_by_mac(MAC)
    assert device is not None
    assert device.keys == (PhoneKey(1, "blf", "202", "Bianchi"),)

    await services.assignments.set_primary(bianchi, second["id"], actor="t")
    await feed.poll()
    device = other.device_by_mac(MAC)
    assert device is not None
    assert device.keys == (PhoneKey(1, "blf", "222", "Bianchi"),)


async def test_the_phone_book_follows_the_users(services: Services) -> None:
    rossi = await _user(services, "rossi", "201")
    other, feed = await _follower(services)
    first = other.phonebook()
    assert [(e.name, e.extension) for e in first.entries] == [("Rossi", "201")]

    await _user(services, "abate", "205")
    await feed.poll()
    second = other.phonebook()
    assert second.revision != first.revision
    assert [e.name for e in second.entries] == ["Abate", "Rossi"]  # by name

    await _user(services, "fabio", "206")
    await services.users.update(rossi, UserPatch(display_name="Èva Rossi"), "t")
    await feed.poll()
    third = other.phonebook()
    assert third.revision != second.revision
    # By name as people read it: "Èva" among the E's, not after "Fabio" (U+00C8 > "F").
    assert [e.name for e in third.entries] == ["Abate", "Èva Rossi", "Fabio"]

    # A change that does not touch what the book shows keeps its revision (and its cache).
    await services.users.update(rossi, UserPatch(cli_custom="299"), "t")
    await feed.poll()
    assert other.phonebook().revision == third.revision

    await services.users.delete(rossi, "t")
    await feed.poll()
    assert [e.name for e in other.phonebook().entries] == ["Abate", "Fabio"]
