"""What each vendor's phones ask for at boot, and what their per-MAC device file must hold.

One `BootCase` per phone: the catalogue model, its MAC, its User-Agent, the requests in boot
order (from /work/shared/reference/vendors.md and phone_templates/<vendor>/vendor.toml) and the
values expected under the vendor's own key names in the device file. Paths and User-Agents are
templates: ``{mac}`` is the MAC in lowercase, ``{MAC}`` in uppercase, ``{mac_colon}``
``00:15:65:4a:b9:3e``, ``{MAC_dash}`` ``00-08-5D-23-74-29``; so the same case can be replayed
for another MAC (an unknown phone, a User-Agent that lies) or with the MAC's case swapped.

Every case provisions the same scenario (`provision`): a user whose display name needs XML
escaping and who presents a custom CLI, a device with its own SIP auth name and password, and
a registrar on port 5062 over TCP.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from provisiond.domain.catalogue import mac_forms as mac_forms  # re-exported for the tests
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate

# -- the scenario every case provisions ---------------------------------------------------

MAIN_EXTENSION = "200"  # the user's number; the device has its own extension
EXTENSION = "201"
AUTH_USER = "u201.desk"  # differs from the extension, so the two keys cannot be swapped
PASSWORD = "Tq7!vX9%kP2mZ"
DISPLAY_NAME = "Rossi & <Figli>"  # needs escaping in XML, must not break key=value files
CLI = "0612345"
REGISTRAR = "sip.boot.example"
PORT = 5062
TRANSPORT = "tcp"


async def provision(services: Services, case: BootCase) -> int:
    """Create the scenario's user, the case's device and the SIP settings; the device id."""
    await services.platform.put_settings(
        {"sip": {"registrar": REGISTRAR, "port": PORT, "transport": TRANSPORT}}, "test"
    )
    user = await services.users.create(
        UserCreate(
            username="rossi",
            display_name=DISPLAY_NAME,
            main_extension=MAIN_EXTENSION,
            cli_custom=CLI,
        ),
        "test",
    )
    device = await services.devices.create(
        DeviceCreate(
            extension=EXTENSION,
            model=case.model,
            mac=case.mac,
            user_id=user["id"],
            sip_username=AUTH_USER,
            sip_password=PASSWORD,
        ),
        "test",
    )
    return int(device["id"])


# -- what a device file must hold ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyValueFile:
    """``key<separator>value`` lines; double quotes around a value are removed.

    `values` maps the vendor's key to the exact value expected; `crlf` demands CRLF line ends.
    """

    separator: str
    values: Mapping[str, str]
    crlf: bool = False

    def mismatches(self, body: bytes) -> list[str]:
        """Every expected key whose value differs, as readable lines (empty when all hold)."""
        text = body.decode("utf-8")
        problems = []
        if self.crlf and text.replace("\r\n", "").count("\n"):
            problems.append("line ends are not all CRLF")
        found: dict[str, list[str]] = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            key, sep, value = line.partition(self.separator)
            if sep:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found.setdefault(key.strip(), []).append(value)
        for key, expected in self.values.items():
            if found.get(key) != [expected]:
                problems.append(f"{key}: expected {expected!r}, found {found.get(key)}")
        return problems


@dataclass(frozen=True, slots=True)
class XmlFile:
    """Values in an XML document, found with xml.etree paths from the root element.

    `texts` maps a path to the element's expected text; `attributes` maps (path, attribute)
    to the attribute's expected value. Each path must match exactly one element.
    """

    texts: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def mismatches(self, body: bytes) -> list[str]:
        """Every expected value that differs, as readable lines (empty when all hold)."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            return [f"not well-formed XML: {exc}"]
        problems = []
        for path, expected in self.texts.items():
            nodes = root.findall(path)
            actual = [node.text or "" for node in nodes]
            if actual != [expected]:
                problems.append(f"{path}: expected text {expected!r}, found {actual}")
        for (path, name), expected in self.attributes.items():
            values = [node.get(name) for node in root.findall(path)]
            if values != [expected]:
                problems.append(f"{path}@{name}: expected {expected!r}, found {values}")
        return problems


DeviceValues = KeyValueFile | XmlFile


class Expected(Protocol):
    """Values expected in a file: what differs, or [] when the body has them all."""

    def mismatches(self, body: bytes) -> list[str]: ...


# -- the boot sequence --------------------------------------------------------------------


class Role(enum.Enum):
    """What a request in the sequence is, which decides how a test checks its answer."""

    COMMON = "common"  # shared or model file: served, never holds a SIP secret
    BOOT = "boot"  # per-MAC file without secrets (Yealink <mac>.boot, Polycom master)
    DEVICE = "device"  # the per-MAC file with the account and its password
    OPTIONAL = "optional"  # a name the phone tries that we answer 404 at once
    FIRMWARE = "firmware"  # an image the phone tries; none is installed in the tests: 404
    UPLOAD_READ = "upload-read"  # an upload name read at boot: 404 until the phone stores one
    UPLOAD = "upload"  # the phone stores a file (HTTP PUT/POST, TFTP WRQ)


@dataclass(frozen=True, slots=True)
class Step:
    """One request: path template, method, expected status, and its role."""

    path: str
    method: str
    status: int
    role: Role

    @property
    def per_mac(self) -> bool:
        """Whether the path carries the MAC (so its case can vary)."""
        return "{mac" in self.path or "{MAC" in self.path


def common(path: str) -> Step:
    """A common/model file: 200 without secrets."""
    return Step(path, "GET", 200, Role.COMMON)


def boot(path: str) -> Step:
    """A per-MAC file without secrets: 200."""
    return Step(path, "GET", 200, Role.BOOT)


def device(path: str) -> Step:
    """The per-MAC device file: 200 with the account."""
    return Step(path, "GET", 200, Role.DEVICE)


def optional(path: str) -> Step:
    """A name answered 404 at once."""
    return Step(path, "GET", 404, Role.OPTIONAL)


def image(path: str) -> Step:
    """A firmware image that is not installed: 404."""
    return Step(path, "GET", 404, Role.FIRMWARE)


def upload_read(path: str) -> Step:
    """An upload name read at boot before anything was stored: 404."""
    return Step(path, "GET", 404, Role.UPLOAD_READ)


def upload(path: str, method: str = "PUT") -> Step:
    """An upload: HTTP answers 201 to PUT and 200 to POST."""
    return Step(path, method, 201 if method == "PUT" else 200, Role.UPLOAD)


@dataclass(frozen=True, slots=True)
class BootCase:
    """One phone's boot as the vendor documents it, and its device file's expected values."""

    vendor: str
    model: str  # catalogue id
    mac: str  # 12 lowercase hex digits
    user_agent_template: str | None  # None: the phone sends none (TFTP-only Cisco SEP)
    firmware: str | None  # what the User-Agent announces, for last_seen
    steps: tuple[Step, ...]  # boot order; uploads come after the phone is up
    device_path: str  # template of the per-MAC device file
    values: DeviceValues
    # Other vendors whose file names the device path also matches: without a User-Agent
    # (TFTP) an unknown MAC under such a name cannot be attributed to one vendor.
    shares_name_with: tuple[str, ...] = ()
    # Where the vendor README says the line label shows the presented CLI when the device
    # has no label of its own (vendors without a caller-id key).
    cli_in_label: DeviceValues | None = None
    # Where the device file carries the phone's own provisioning (HTTP digest) credentials:
    # called with (user name, password), it gives the values expected at the vendor's keys.
    # None only for vendors whose phones cannot authenticate to a provisioning server (their
    # README says so); the digest round trip (test_provisioning_credentials.py) uses it.
    credentials: Callable[[str, str], Expected] | None = None

    @property
    def id(self) -> str:
        """The pytest id: the catalogue model."""
        return self.model

    def path(self, template: str, mac: str | None = None) -> str:
        """A path template filled in for this case's MAC (or another one)."""
        return template.format_map(mac_forms(mac or self.mac))

    def user_agent(self, mac: str | None = None) -> str | None:
        """The User-Agent this phone sends (claiming `mac` when given)."""
        if self.user_agent_template is None:
            return None
        return self.user_agent_template.format_map(mac_forms(mac or self.mac))

    @property
    def ua_has_mac(self) -> bool:
        """Whether the User-Agent carries the MAC (then it must match the path's)."""
        return self.user_agent_template is not None and "{" in self.user_agent_template

    @property
    def gets(self) -> tuple[Step, ...]:
        """The boot requests that read (GET, TFTP RRQ), in order."""
        return tuple(s for s in self.steps if s.method == "GET")

    @property
    def uploads(self) -> tuple[Step, ...]:
        """The requests that store a file."""
        return tuple(s for s in self.steps if s.role is Role.UPLOAD)


# -- per-vendor values (the README of each vendor names the keys) --------------------------
# The table is laid out by hand, one phone per block, so the formatter is kept out of it.
# fmt: off


def _p_values(root: str) -> XmlFile:
    """Grandstream-style P-values (Grandstream and Htek)."""
    return XmlFile(texts={
        f"{root}/P35": EXTENSION, f"{root}/P36": AUTH_USER, f"{root}/P34": PASSWORD,
        f"{root}/P3": DISPLAY_NAME, f"{root}/P47": f"{REGISTRAR}:{PORT}", f"{root}/P130": "1",
    })


def _param(name: str) -> tuple[str, str]:
    """Gigaset: the value attribute of an nvm param."""
    return (f"nvm/param[@name='{name}']", "value")


@dataclass(frozen=True, slots=True)
class _GigasetServerUrl(XmlFile):
    """Gigaset: the digest user and password in the provisioning server URL (README).

    The URL's host is the test server's, so only its user information is compared.
    """

    user: str = ""
    password: str = ""

    def mismatches(self, body: bytes) -> list[str]:
        """The URL's user and password (percent-decoded) must be the expected ones."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            return [f"not well-formed XML: {exc}"]
        path, name = _param("Provisioning.global.ProvisioningServer")
        urls = [node.get(name, "") for node in root.findall(path)]
        if len(urls) != 1:
            return [f"{path}: expected one, found {urls}"]
        parts = urlsplit(urls[0])
        found = (unquote(parts.username or ""), unquote(parts.password or ""))
        if found != (self.user, self.password):
            return [f"{path}: expected user information {self.user!r}, found {urls[0]!r}"]
        return []


def _gigaset_credentials(user: str, password: str) -> XmlFile:
    """Gigaset: see `_GigasetServerUrl`."""
    return _GigasetServerUrl(user=user, password=password)


def _reg(name: str) -> tuple[str, str]:
    """Polycom: an attribute of the reg element."""
    return ("reg", name)


_YEALINK = KeyValueFile("=", {
    "account.1.user_name": EXTENSION, "account.1.auth_name": AUTH_USER,
    "account.1.password": PASSWORD, "account.1.display_name": DISPLAY_NAME,
    "account.1.sip_server.1.address": REGISTRAR, "account.1.sip_server.1.port": str(PORT),
    "account.1.sip_server.1.transport_type": "1",
})
_POLYCOM = XmlFile(attributes={
    _reg("reg.1.address"): EXTENSION, _reg("reg.1.auth.userId"): AUTH_USER,
    _reg("reg.1.auth.password"): PASSWORD, _reg("reg.1.displayName"): DISPLAY_NAME,
    _reg("reg.1.server.1.address"): REGISTRAR, _reg("reg.1.server.1.port"): str(PORT),
    _reg("reg.1.server.1.transport"): "TCPOnly",
})
_SPA = XmlFile(texts={
    "User_ID_1_": EXTENSION, "Auth_ID_1_": AUTH_USER, "Password_1_": PASSWORD,
    "Display_Name_1_": DISPLAY_NAME, "Proxy_1_": f"{REGISTRAR}:{PORT}", "SIP_Transport_1_": "TCP",
})


@dataclass(frozen=True, slots=True)
class _SpaProfileRule:
    """Cisco SPA/MPP: the credentials are options of the rule's URL, whose server part is the
    stack's own address: ``[--uid U --pwd P] http://<server>/$MA.xml`` (README)."""

    user: str
    password: str

    def mismatches(self, body: bytes) -> list[str]:
        rules = [node.text or "" for node in ET.fromstring(body).findall("Profile_Rule")]
        prefix = f"[--uid {self.user} --pwd {self.password}] http"
        if len(rules) == 1 and rules[0].startswith(prefix) and rules[0].endswith("/$MA.xml"):
            return []
        return [f"Profile_Rule: expected {prefix}...$MA.xml, found {rules}"]
_CISCO_79X0 = KeyValueFile(":", {  # UDP only: these phones have no transport key
    "line1_name": EXTENSION, "line1_authname": AUTH_USER, "line1_password": PASSWORD,
    "line1_displayname": DISPLAY_NAME, "proxy1_address": REGISTRAR, "proxy1_port": str(PORT),
})
_LINE = "sipProfile/sipLines/line[@button='1']"
_CISCO_SEP = XmlFile(texts={
    f"{_LINE}/name": EXTENSION, f"{_LINE}/authName": AUTH_USER,
    f"{_LINE}/authPassword": PASSWORD, f"{_LINE}/displayName": DISPLAY_NAME,
    f"{_LINE}/proxy": REGISTRAR, f"{_LINE}/port": str(PORT), "transportLayerProtocol": "1",
})
_SNOM = XmlFile(texts={
    "phone-settings/user_name[@idx='1']": EXTENSION,
    "phone-settings/user_pname[@idx='1']": AUTH_USER,
    "phone-settings/user_pass[@idx='1']": PASSWORD,
    "phone-settings/user_realname[@idx='1']": DISPLAY_NAME,
    "phone-settings/user_host[@idx='1']": f"{REGISTRAR}:{PORT};transport=tcp",
})
# The X4 (older firmware) reads <VOIP_CONFIG_FILE>; <sysConf> models use sip/line[@index='1'].
_FANVIL_LINE = "SIP_CONFIG_MODULE/SIP_Line_List/SIP_Line_List_Entry"
_FANVIL = XmlFile(texts={
    f"{_FANVIL_LINE}/Phone_Number": EXTENSION, f"{_FANVIL_LINE}/Register_User": AUTH_USER,
    f"{_FANVIL_LINE}/Register_Pswd": PASSWORD, f"{_FANVIL_LINE}/Display_Name": DISPLAY_NAME,
    f"{_FANVIL_LINE}/Register_Addr": REGISTRAR, f"{_FANVIL_LINE}/Register_Port": str(PORT),
    f"{_FANVIL_LINE}/Transport": "1",
})


def _fanvil_legacy_credentials(user: str, password: str) -> XmlFile:
    """Fanvil <VOIP_CONFIG_FILE>: the auto-provisioning server user and password."""
    return XmlFile(texts={
        "AUTOUPDATE_CONFIG_MODULE/Download_Username": user,
        "AUTOUPDATE_CONFIG_MODULE/Download_Password": password,
    })


def _aastra_credentials(user: str, password: str) -> KeyValueFile:
    """Aastra/Mitel: HTTP/HTTPS digest credentials for the configuration server."""
    return KeyValueFile(":", {"http digest username": user, "http digest password": password})
_GIGASET = XmlFile(attributes={
    _param("SipAccount.00001.UserName"): EXTENSION,
    _param("SipAccount.00001.AuthName"): AUTH_USER,
    _param("SipAccount.00001.AuthPassword"): PASSWORD,
    _param("SipAccount.00001.DisplayName"): DISPLAY_NAME,
    _param("SipProvider.0.RegServerAddress"): REGISTRAR,
    _param("SipProvider.0.RegServerPort"): str(PORT),
    _param("SipProvider.0.TransportProtocol"): "2",
})
_AASTRA = KeyValueFile(":", {
    "sip line1 user name": EXTENSION, "sip line1 auth name": AUTH_USER,
    "sip line1 password": PASSWORD, "sip line1 display name": DISPLAY_NAME,
    "sip line1 screen name 2": CLI,  # the presented CLI has a key of its own here
    "sip line1 registrar ip": REGISTRAR, "sip line1 registrar port": str(PORT),
    "sip transport protocol": "2",
})
_PANASONIC = KeyValueFile("=", {
    "PHONE_NUMBER_1": EXTENSION, "SIP_AUTHID_1": AUTH_USER, "SIP_PASS_1": PASSWORD,
    "DISPLAY_NAME_1": DISPLAY_NAME, "SIP_RGSTR_ADDR_1": REGISTRAR,
    "SIP_RGSTR_PORT_1": str(PORT), "SIP_TRANSPORT_1": "1",
}, crlf=True)

# Names a vendor's device file shares with other vendors' patterns (see `shares_name_with`).
_LIKE_MAC_CFG = ("yealink", "polycom", "fanvil", "aastra")  # <mac>.cfg


def _others(vendor: str, group: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in group if v != vendor)


BOOT_CASES: tuple[BootCase, ...] = (
    BootCase(
        "yealink", "yealink-t46s", "0015654ab93e",
        "Yealink SIP-T46S 66.86.0.15 {mac_colon}", "66.86.0.15",
        (boot("{mac}.boot"), common("y000000000066.cfg"), optional("{mac}_Security.enc"),
         device("{mac}.cfg"), upload_read("{mac}-local.cfg"),
         upload("{mac}-local.cfg"), upload("{mac}-contact.xml")),
        "{mac}.cfg", _YEALINK, _others("yealink", _LIKE_MAC_CFG),
        KeyValueFile("=", {"account.1.label": CLI}),
        credentials=lambda user, password: KeyValueFile("=", {
            "static.auto_provision.server.username": user,
            "static.auto_provision.server.password": password,
        }),
    ),
    BootCase(  # firmware before 81: no boot files; the MAC comes without colons
        "yealink", "yealink-t56a", "001565f429a4",
        "Yealink SIP-T56A 58.80.0.25 {mac}", "58.80.0.25",
        (common("y000000000058.cfg"), device("{mac}.cfg")),
        "{mac}.cfg", _YEALINK, _others("yealink", _LIKE_MAC_CFG),
        KeyValueFile("=", {"account.1.label": CLI}),
        credentials=lambda user, password: KeyValueFile("=", {
            "static.auto_provision.server.username": user,
            "static.auto_provision.server.password": password,
        }),
    ),
    BootCase(  # no MAC in the User-Agent
        "polycom", "polycom-vvx-410", "0004f2e6a1b2",
        "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application", "5.9.5.0614",
        (boot("{mac}.cfg"), image("sip.ld"), device("{mac}-user.cfg"), common("common.cfg"),
         optional("{mac}-license.cfg"), boot("{mac}-directory.xml"),  # the phone book
         optional("000000000000-directory.xml"), upload_read("{mac}-phone.cfg"),
         upload_read("{mac}-web.cfg"),
         upload("{mac}-boot.log"), upload("{mac}-app.log"), upload("{mac}-phone.cfg")),
        "{mac}-user.cfg", _POLYCOM, (),
        XmlFile(attributes={_reg("reg.1.label"): CLI}),
        credentials=lambda user, password: XmlFile(attributes={
            ("device", "device.set"): "1",
            ("device", "device.prov.user.set"): "1", ("device", "device.prov.user"): user,
            ("device", "device.prov.password.set"): "1",
            ("device", "device.prov.password"): password,
        }),
    ),
    BootCase(
        "cisco_spa", "cisco-spa508g", "0002fdff2103",
        "Cisco/SPA508G-7.4.8a ({MAC})(CBT141400UK)", "7.4.8a",
        (common("spa508G.cfg"), device("{mac}.xml"), upload("{mac}-report.xml", "PUT")),
        "{mac}.xml", _SPA, ("gigaset",),
        XmlFile(texts={"Short_Name_1_": CLI}),
        credentials=_SpaProfileRule,
    ),
    BootCase(  # MPP 3PCC: the factory rule /$PSN.xml, $PSN = "8841-3PCC" (README)
        "cisco_spa", "cisco-cp-8841-3pcc", "00562b043615",
        "Cisco-CP-8841-3PCC/11.0 ({mac})", "11.0",
        (common("8841-3PCC.xml"), device("{mac}.xml"), upload("{mac}-report.xml", "POST")),
        "{mac}.xml", _SPA, ("gigaset",),
        XmlFile(texts={"Short_Name_1_": CLI}),
        credentials=_SpaProfileRule,
    ),
    BootCase(  # 7940/7960 with SIP firmware: TFTP, no User-Agent
        "cisco_sep", "cisco-cp-7960", "000d28fa1b2c", None, None,
        (optional("OS79XX.TXT"), common("SIPDefault.cnf"), device("SIP{MAC}.cnf"),
         optional("RINGLIST.DAT"), optional("dialplan.xml")),
        "SIP{MAC}.cnf", _CISCO_79X0, (),
        KeyValueFile(":", {"line1_shortname": CLI}),
    ),
    BootCase(  # SEP phones: trust lists first (non-secure mode: 404), then SEP<MAC>.cnf.xml
        "cisco_sep", "cisco-cp-7942", "001bd4c5e6f7", None, None,
        (optional("CTLSEP{MAC}.tlv"), optional("ITLSEP{MAC}.tlv"), optional("ITLFile.tlv"),
         device("SEP{MAC}.cnf.xml")),
        "SEP{MAC}.cnf.xml", _CISCO_SEP, (),
        XmlFile(texts={f"{_LINE}/featureLabel": CLI}),
    ),
    BootCase(  # cfg<model>.xml and cfg.xml are fallbacks; phones may read all of them
        "grandstream", "grandstream-gxp2135", "000b828aa872",
        "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId {mac}", "1.0.7.97",
        (optional("cfg{mac}"), device("cfg{mac}.xml"), common("cfggxp2135.xml"),
         common("cfg.xml")),
        "cfg{mac}.xml", _p_values("config"), ("htek",),
        XmlFile(texts={"config/P270": CLI}),
        # Config HTTP/HTTPS user name and password (README: GXP21xx config template)
        credentials=lambda user, password: XmlFile(texts={
            "config/P1360": user, "config/P1361": password,
        }),
    ),
    BootCase(
        "snom", "snom-d785", "000413922d24",
        "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 {MAC} "
        "SXM:0 UXM:0)", "10.1.33.33",
        (common("snomD785.htm"), device("snomD785-{MAC}.htm")),
        "snomD785-{MAC}.htm", _SNOM, (),
        XmlFile(texts={"phone-settings/user_idle_text[@idx='1']": CLI}),
        credentials=lambda user, password: XmlFile(texts={
            "phone-settings/http_client_user": user,
            "phone-settings/http_client_pass": password,
        }),
    ),
    BootCase(
        "fanvil", "fanvil-x4", "0c383e07e16c",
        "Fanvil X4 2.10.2.6887 {mac}", "2.10.2.6887",
        (common("f0X4hw1.100.cfg"), device("{mac}.cfg")),
        "{mac}.cfg", _FANVIL, _others("fanvil", _LIKE_MAC_CFG),
        credentials=_fanvil_legacy_credentials,
    ),
    BootCase(
        "gigaset", "gigaset-n870", "7c2f80e0d605",
        "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{MAC}", "83.V2.11.0+build.a546b91",
        (device("{MAC}.xml"),),
        "{MAC}.xml", _GIGASET, ("cisco_spa",),
        credentials=_gigaset_credentials,
    ),
    BootCase(  # .tuz: encrypted variants, tried only by phones set up for them
        "aastra", "aastra-6731i", "00085d237429",
        "Aastra6731i MAC:{MAC_dash} V:3.2.0.70-SIP", "3.2.0.70",
        (common("aastra.cfg"), optional("aastra.tuz"), common("6731i.cfg"),
         device("{MAC}.cfg"), optional("{MAC}.tuz")),
        "{MAC}.cfg", _AASTRA, _others("aastra", _LIKE_MAC_CFG),
        credentials=_aastra_credentials,
    ),
    BootCase(  # Mitel 69xx read startup.cfg instead of aastra.cfg
        "aastra", "mitel-6940", "1400e91b4524",
        "Mitel6940 MAC:{MAC_dash} V:6.4.0.140-SIP", "6.4.0.140",
        (common("startup.cfg"), common("6940.cfg"), device("{MAC}.cfg")),
        "{MAC}.cfg", _AASTRA, _others("aastra", _LIKE_MAC_CFG),
        credentials=_aastra_credentials,
    ),
    BootCase(  # {MODEL}.cfg names the three files; the order they are read in is unverified
        "panasonic", "panasonic-kx-ut113", "0080f0c8c381",
        "Panasonic_KX-UT113/01.133 ({mac})", "01.133",
        (common("KX-UT113.cfg"), device("Config{MAC}.cfg"), common("ConfigKX-UT113.cfg"),
         common("ConfigCom.cfg")),
        "Config{MAC}.cfg", _PANASONIC, (),
        credentials=lambda user, password: KeyValueFile("=", {
            "HTTP_AUTH_ID": user, "HTTP_AUTH_PASS": password,
        }, crlf=True),
    ),
    BootCase(
        "htek", "htek-uc926", "001fc11a2b3c",
        "Htek UC926 2.0.4.2 {mac_colon}", "2.0.4.2",
        (common("cfg0010.xml"), device("cfg{mac}.xml")),
        "cfg{mac}.xml", _p_values("config"), ("grandstream",),
        XmlFile(texts={"config/P20000": CLI}),
        credentials=lambda user, password: XmlFile(texts={
            "config/P1360": user, "config/P1361": password,
        }),
    ),
)

VENDORS = ("yealink", "polycom", "cisco_spa", "cisco_sep", "grandstream", "snom", "fanvil",
           "gigaset", "aastra", "panasonic", "htek")
# fmt: on
