"""Every model of the catalogue (phone_templates/<vendor>/models.toml), one test each.

For each model: its documented User-Agent names its vendor and this model (and no other model
of the vendor more exactly); every path of its boot sequence is a file of its vendor, a family
file resolves to a model of the same family; and its per-device file, rendered for a device
carrying every account the model can carry, holds each account's extension, auth name,
password and display name as whole values of the format (XML parsed, so escaping is proven),
and the registrar. The boot over real sockets is tests/integration/test_catalogue_boot.py.
"""

from __future__ import annotations

from collections import Counter

import pytest

from provisiond.domain import policy
from provisiond.domain.catalogue import CatalogueModel, boot_paths, user_agent
from provisiond.domain.identify import FileKind, match_path, parse_user_agent
from tests.catalogue_checks import is_xml, missing_accounts, values_of
from tests.phone_context import DEFAULTS, account_values, catalogue_models, phone_context, vendors
from tests.template_checks import assert_no_leftovers, render_path, spec_for

MODELS = tuple(catalogue_models().values())
MAC = "0015650a0b0c"
# Breadth the catalogue must keep (issue 15): models and product families (vendor, series).
MIN_MODELS = 450
MIN_SERIES = 20


def device_paths(model: CatalogueModel) -> list[str]:
    """The per-device (kind device) paths of the model's boot sequence."""
    vendor = vendors()[model.vendor]
    return [
        path
        for path in boot_paths(model, MAC)
        if match_path((vendor,), path)[0].spec.kind is FileKind.DEVICE
    ]


def test_breadth() -> None:
    series = {(m.vendor, m.series) for m in MODELS}
    assert len(MODELS) >= MIN_MODELS, f"{len(MODELS)} models"
    assert len(series) >= MIN_SERIES, f"{len(series)} series"
    names = Counter((m.vendor, m.name.lower()) for m in MODELS)
    assert [n for n, count in names.items() if count > 1] == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_user_agent_names_the_model(model: CatalogueModel) -> None:
    ua = user_agent(model, MAC)
    if ua is None:
        assert set(model.protocols) == {"tftp"}, "a phone without a User-Agent is TFTP-only"
        return
    agent = parse_user_agent(tuple(vendors().values()), ua)
    assert agent is not None, ua
    assert agent.vendor.id == model.vendor, ua
    assert agent.model is not None
    assert policy.model_matches(agent.model, name=model.name, family=model.family), ua
    if agent.mac is not None:
        assert agent.mac == MAC
    # Of the vendor's models this User-Agent denotes, this one is named most exactly.
    named = [
        m
        for m in MODELS
        if m.vendor == model.vendor
        and policy.model_matches(agent.model, name=m.name, family=m.family)
    ]
    best = max(len(policy.squash(m.name)) for m in named)
    assert [m.id for m in named if len(policy.squash(m.name)) == best] == [model.id], ua


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_boot_paths_are_vendor_files(model: CatalogueModel) -> None:
    vendor = vendors()[model.vendor]
    for path in boot_paths(model, MAC):
        matches = match_path((vendor,), path)
        assert len(matches) == 1, path
        if matches[0].family is not None:
            same = [
                m.id
                for m in MODELS
                if m.vendor == model.vendor and m.family.lower() == matches[0].family.lower()
            ]
            assert model.id in same, path


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_device_file_carries_every_account(model: CatalogueModel) -> None:
    context = phone_context(
        model.vendor, FileKind.DEVICE, model=model.id, mac=MAC, accounts=model.accounts
    )
    expected = [
        (1, DEFAULTS["extension"], DEFAULTS["auth_username"], DEFAULTS["password"],
         DEFAULTS["display_name"]),
    ] + [
        (slot, v["extension"], v["auth_username"], v["password"], v["display_name"])
        for slot in range(2, model.accounts + 1)
        for v in [account_values(slot)]
    ]  # fmt: skip
    paths = device_paths(model)
    assert paths
    found: set[str] = set()
    for path in paths:
        text = render_path(model.vendor, path, context)
        assert_no_leftovers(text)
        template = spec_for(model.vendor, path).template or ""
        assert is_xml(text.encode()) is template.endswith(".xml.j2"), path
        found |= values_of(text.encode())
    missing = missing_accounts(found, ((slot, tuple(v)) for slot, *v in expected))
    assert missing == [], f"{model.id}: not written (slot, value): {missing[:6]}"
    assert any(v.startswith(DEFAULTS["registrar"]) for v in found), "registrar missing"


@pytest.mark.parametrize(
    ("ua_model", "name", "family", "same"),
    [
        ("SIP-T46S", "T46S", "66", True),  # the name may end the User-Agent's model
        ("VVX_410", "VVX 410", "VVX_410", True),  # the family whole
        ("SPA-942", "SPA942", "spa942", True),
        ("T53", "T19P E2", "53", False),  # a family code is never a suffix (T53 ends in 53)
        ("T46", "T46S", "66", False),
    ],
)
def test_a_user_agent_model_names_a_catalogue_model(
    ua_model: str, name: str, family: str, same: bool
) -> None:
    assert policy.model_matches(ua_model, name=name, family=family) is same
