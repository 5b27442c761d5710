"""Helpers for the vendor template tests: load one vendor, render a requested path, parse output.

Each helper renders through the real `Renderer` and the real vendor description, so a test
exercises the same lookup the resolver does: path -> matching file spec -> template.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from provisiond.domain.identify import FileKind, FileSpec, VendorSpec, match_path
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import default_templates_root
from tests.phone_context import DEFAULTS, phone_context, vendors

__all__ = [
    "TEMPLATES_ROOT",
    "VARIANTS",
    "assert_no_leftovers",
    "check_every_template",
    "load",
    "parse_key_values",
    "render_path",
    "spec_for",
    "xml_root",
]

TEMPLATES_ROOT: Path = default_templates_root()
# Text that must never reach a phone: unrendered Jinja, Python's None, a dangling "key =".
_LEFTOVERS = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|\bNone\b")

# Every combination the templates branch on: transport x outbound proxy x firmware x
# provisioning credentials (the device's provisioning password set or not).
VARIANTS: list[dict[str, str]] = [
    {
        "transport": transport,
        "outbound_proxy": proxy,
        "firmware_url": firmware,
        "prov_password": password,
    }
    for transport in ("udp", "tcp", "tls")
    for proxy in ("", "sbc.example.net")
    for firmware in ("", "http://192.0.2.10:8080/firmware/image-1.2.3.bin")
    for password in ("", DEFAULTS["prov_password"])
]


def load(vendor_id: str) -> VendorSpec:
    """The vendor description, as `load_vendors` reads the repository's templates."""
    return vendors()[vendor_id]


@cache
def _renderer() -> Renderer:
    """One renderer for the whole test session, as in the server."""
    return Renderer(TEMPLATES_ROOT)


def spec_for(vendor_id: str, path: str) -> FileSpec:
    """The single file spec of `vendor_id` that matches `path`."""
    matches = match_path([load(vendor_id)], path)
    assert len(matches) == 1, f"{path}: expected one {vendor_id} match, got {matches}"
    return matches[0].spec


def render_path(vendor_id: str, path: str, context: Mapping[str, object]) -> str:
    """Render the file a phone gets for `path`, decoded (bytes are checked to be UTF-8)."""
    body = _renderer().render(vendor_id, spec_for(vendor_id, path), context)
    return body.decode("utf-8")


def assert_no_leftovers(text: str) -> None:
    """No template syntax, no "None", no control characters other than CR/LF/TAB."""
    assert not _LEFTOVERS.search(text), _LEFTOVERS.search(text)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)


def parse_key_values(text: str, separator: str) -> dict[str, str]:
    """Parse ``key<sep>value`` lines (``#`` comments skipped); keys must be unique, values set.

    Double quotes around a value are removed (Cisco 79x0 style).
    """
    result: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(separator)
        assert sep, f"not a key{separator}value line: {line!r}"
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        assert key not in result, f"duplicate key {key}"
        assert value, f"empty value for {key}"
        result[key] = value
    return result


def xml_root(text: str) -> ET.Element:
    """Parse the XML document (the declaration included)."""
    return ET.fromstring(text.encode("utf-8"))


def check_every_template(vendor_id: str, model_id: str, variant: Mapping[str, str]) -> None:
    """Render every templated file of the vendor: clean output, XML parses, secrets in place.

    Device files must carry the SIP password; device_boot and common files must not.
    """
    for spec in load(vendor_id).files:
        if spec.template is None:
            continue
        has_family = "family" in spec.pattern.groupindex
        model = None if spec.kind is FileKind.COMMON and not has_family else model_id
        context = phone_context(
            vendor_id,
            spec.kind,
            model=model,
            transport=variant["transport"],
            outbound_proxy=variant["outbound_proxy"],
            firmware_url=variant["firmware_url"],
            prov_password=variant["prov_password"],
        )
        body = _renderer().render(vendor_id, spec, context)
        text = body.decode("utf-8")
        assert_no_leftovers(text)
        if spec.template.endswith(".xml.j2"):
            xml_root(text)
        has_password = DEFAULTS["password"] in text or "Xk7&amp;pQ2z9w" in text
        assert has_password is (spec.kind is FileKind.DEVICE), spec.template
