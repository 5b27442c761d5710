"""The rules that are data (LICENCE_SEATS, DEPENDENCIES) and the device checks shared by the
single-device and bulk paths: the tables are well formed, and the checks follow the tables.

A row added to a table (with monkeypatch) must change what the checks decide: that is what
makes the tables the one place the rules are written.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import netaddr
import pytest
from sqlalchemy import String

from provisiond.domain import device_rules, rules
from provisiond.domain.errors import Conflict, InvalidInput, LicenceRefused
from provisiond.domain.mac import mac_compact, parse_mac
from provisiond.domain.rules import (
    PARAMETER,
    SETTING,
    SWITCH,
    VALUE,
    Client,
    Dependency,
    LicenceSeat,
    TeamApp,
)
from provisiond.services.commands import ClientInput
from provisiond.services.fleet_rows import ImportRow
from provisiond.services.users import _patched
from provisiond.settings import PlatformSettings
from provisiond.storage.models import Device, User

PANELS = {"team_app": TeamApp, "client": Client}


def _panel_field(name: str) -> tuple[str, str]:
    panel, _, field = name.partition(".")
    return panel, field


@pytest.mark.parametrize("feature", [seat.feature for seat in rules.LICENCE_SEATS])
def test_every_licensed_feature_is_a_flag_and_a_column(feature: str) -> None:
    panel, name = _panel_field(feature)
    assert name in {f.name for f in dataclasses.fields(PANELS[panel])}
    assert feature.replace(".", "_") in User.__table__.columns


@pytest.mark.parametrize("dep", rules.DEPENDENCIES, ids=lambda d: f"{d.field}<-{d.needs}")
def test_every_dependency_names_real_fields(dep: Dependency) -> None:
    assert dep.kind in rules.DEPENDENCY_KINDS
    panel, name = _panel_field(dep.field)
    assert name in {f.name for f in dataclasses.fields(PANELS[panel])}
    assert dep.field.replace(".", "_") in User.__table__.columns
    if dep.kind == SETTING:
        assert isinstance(getattr(PlatformSettings(), dep.needs), bool)
    else:  # switch, value and parameter rows stay inside one panel
        assert _panel_field(dep.needs)[0] == panel
        assert _panel_field(dep.needs)[1] in {f.name for f in dataclasses.fields(PANELS[panel])}
    assert bool(dep.detail) == (dep.kind != PARAMETER)


def test_switches_form_no_cycle() -> None:
    """switches_needed would never end on a cycle; every option reaches a top switch."""
    for dep in rules.DEPENDENCIES:
        chain = rules.feature_on_when(dep.field)
        assert len(chain) == len(set(chain))
        assert chain[-1] == dep.field


def test_the_product_page_rules_as_the_tables_say() -> None:
    assert rules.feature_on_when("team_app.smart_working") == (
        "team_app.enabled",
        "team_app.smart_working",
    )
    assert rules.feature_on_when("client.video_calls") == (
        "client.enabled",
        "client.web_phone",
        "client.video_calls",
    )
    assert rules.dependants("client.enabled") == (
        "client.smart_working",
        "client.web_phone",
        "client.video_calls",
    )
    assert rules.dependants("client.web_phone") == ("client.video_calls",)
    assert rules.dependants("team_app.enabled") == ("team_app.smart_working", "team_app.gsm_mode")
    assert rules.dependants("team_app.gsm_mode") == ()  # parameters are never switched off
    assert rules.features_needing_setting("mcs_interconnected") == (
        "team_app.smart_working",
        "client.smart_working",
    )
    assert rules.LICENCE_MODULES == ("APP_USERS", "MCS_APP_WEBRTC", "USER_CLIENT", "MCS_USERS")


def test_rules_table_is_the_tables_as_data() -> None:
    table = rules.rules_table()
    assert table["licence_modules"] == list(rules.licence_modules())
    assert [LicenceSeat(**row) for row in table["licences"]] == list(rules.LICENCE_SEATS)
    assert [Dependency(**row) for row in table["dependencies"]] == list(rules.DEPENDENCIES)


# --- a row added to a table changes the decisions --------------------------------------------


def test_an_added_licence_row_is_needed_checked_and_known(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = LicenceSeat("client.video_calls", "VIDEO")
    monkeypatch.setattr(rules, "LICENCE_SEATS", (*rules.LICENCE_SEATS, extra))
    video = Client(enabled=True, web_phone=True, video_calls=True)
    needed = rules.licences_needed(TeamApp(), video)
    assert needed == Counter({"USER_CLIENT": 1, "VIDEO": 1})
    # Not in effect without its switches: no seat.
    assert "VIDEO" not in rules.licences_needed(TeamApp(), Client(video_calls=True))
    with pytest.raises(LicenceRefused) as info:
        rules.check_licences(Counter(), needed, {"USER_CLIENT": 5}, {})
    assert (info.value.module, info.value.field) == ("VIDEO", "client.video_calls")
    assert rules.check_licence_counts({"VIDEO": 3}, {}) == {"VIDEO": 3}
    assert "VIDEO" in rules.rules_table()["licence_modules"]


def test_without_the_row_the_module_is_unknown() -> None:
    with pytest.raises(InvalidInput):
        rules.check_licence_counts({"VIDEO": 3}, {})


def test_an_added_dependency_row_is_checked_and_cascades(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = (
        Dependency("client.video_calls", "mcs_interconnected", SETTING, "video needs MCS"),
        Dependency("team_app.gsm_mode", "team_app.smart_working", SWITCH, "GSM needs smart"),
    )
    monkeypatch.setattr(rules, "DEPENDENCIES", (*rules.DEPENDENCIES, *extra))
    video = Client(enabled=True, web_phone=True, video_calls=True)
    with pytest.raises(Conflict) as info:
        rules.check_client(video, mcs_interconnected=False)
    assert (info.value.field, info.value.detail) == ("client.video_calls", "video needs MCS")
    assert rules.check_client(video, mcs_interconnected=True) == video
    gsm = TeamApp(enabled=True, gsm_mode=True, gsm_number="3331234567")
    with pytest.raises(Conflict) as switched:
        rules.check_team_app(gsm, mcs_interconnected=True)
    assert switched.value.detail == "GSM needs smart"
    assert rules.dependants("team_app.smart_working") == ("team_app.gsm_mode",)


def test_the_user_form_cascade_follows_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """services.users turns off what rules.dependants names, and only that."""
    on = Client(enabled=True, smart_working=True, web_phone=True, video_calls=True)
    off = _patched(on, ClientInput(web_phone=False), "client")
    assert (off.enabled, off.smart_working, off.web_phone, off.video_calls) == (
        True,
        True,
        False,
        False,
    )
    extra = Dependency("client.smart_working", "client.web_phone", SWITCH, "smart needs web")
    monkeypatch.setattr(rules, "DEPENDENCIES", (*rules.DEPENDENCIES, extra))
    off = _patched(on, ClientInput(web_phone=False), "client")
    assert (off.smart_working, off.video_calls) == (False, False)


def test_value_rows_are_reported_on_the_value() -> None:
    (row,) = [d for d in rules.DEPENDENCIES if d.kind == VALUE]
    assert row.refused_at == row.needs == "team_app.gsm_number"
    with pytest.raises(Conflict) as info:
        rules.check_team_app(TeamApp(enabled=True, gsm_mode=True), mcs_interconnected=False)
    assert (info.value.field, info.value.detail) == (row.needs, row.detail)


# --- device checks -----------------------------------------------------------------------------


def test_label_limit_is_the_column_length() -> None:
    column = Device.__table__.columns["label"].type
    assert isinstance(column, String)
    assert column.length == device_rules.LABEL_MAX_LENGTH
    longest = "x" * device_rules.LABEL_MAX_LENGTH
    assert device_rules.check_label(longest) == longest
    assert device_rules.check_label("") is None
    assert device_rules.check_label(None) is None
    with pytest.raises(InvalidInput) as info:
        device_rules.check_label(longest + "x")
    assert info.value.field == "label"
    assert str(device_rules.LABEL_MAX_LENGTH) in info.value.detail


def test_device_uniqueness_and_catalogue_messages() -> None:
    mac = parse_mac("00-15-65-AA-BB-CC")
    with pytest.raises(Conflict) as info:
        device_rules.check_mac_free(mac, holder=7, device_id=None)
    assert (info.value.field, info.value.detail) == (
        "mac",
        "MAC 00:15:65:aa:bb:cc is already device 7's",
    )
    device_rules.check_mac_free(mac, holder=7, device_id=7)  # its own MAC
    device_rules.check_mac_free(mac, holder=None, device_id=None)
    with pytest.raises(Conflict) as ext:
        device_rules.check_extension_free("201", holder=3, device_id=4)
    assert (ext.value.field, ext.value.detail) == (
        "extension",
        "extension 201 is already device 3's",
    )
    device_rules.check_extension_free("201", holder=3, device_id=3)
    assert device_rules.check_model_known("yealink-t46s", {"yealink-t46s"}) == "yealink-t46s"
    with pytest.raises(InvalidInput) as model:
        device_rules.check_model_known("nope", {"yealink-t46s"})
    assert model.value.field == "model"


def test_mac_compact_is_the_one_storage_form() -> None:
    mac = netaddr.EUI("00:15:65:0a:0b:0c")
    assert mac_compact(mac) == "0015650a0b0c"
    row = ImportRow(1, mac, "m", "201", None, None, False, None, True, None)
    assert row.mac_key == mac_compact(mac)
