"""`provisiond dhcp` output against the real daemons (Debian: dnsmasq, isc-dhcp-server,
kea-dhcp4-server).

Each site shape is rendered for each daemon and checked two ways:

- the daemon's check mode (`dnsmasq --test`, `dhcpd -t`, `kea-dhcp4 -t`) on a configuration
  that includes the generated file exactly as docs/deployment.md says (ISC and Kea need a
  subnet of their own to start: the wrapper adds a dummy one, for the check only);
- for dnsmasq and Kea, a real DHCP exchange on 127.0.0.1: the daemon runs on unprivileged
  ports, and a DHCPINFORM from each kind of phone (by MAC prefix or vendor class) and from a
  PC must come back with exactly the provisioning options that phone reads. (ISC dhcpd cannot
  serve the loopback interface, so it gets the check mode only.)

A missing daemon fails the test naming its package; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisiond.dhcp import render_dhcp
from provisiond.provisioning.vendors import load_vendors
from provisiond.settings import REPO_ROOT
from tests.serve_process import free_port

VENDORS = load_vendors(REPO_ROOT / "phone_templates")
PACKAGES = {"dnsmasq": "dnsmasq", "dhcpd": "isc-dhcp-server", "kea-dhcp4": "kea-dhcp4-server"}
CHECK_TIMEOUT_S = 30
PROVISIONING_OPTIONS = (66, 114, 150, 160)  # what phones put in their parameter request list
START_ATTEMPTS = 50  # DHCPINFORM retries while a daemon starts (bounded)
REPLY_WAIT_S = 0.2


@dataclass(frozen=True)
class Probe:
    """A client that asks for its options, and what it must get (code -> bytes)."""

    name: str
    mac: str
    vendor_class: str | None
    expected: dict[int, bytes]


@dataclass(frozen=True)
class Site:
    """One site shape: its networks, endpoints, vendors, and the probes that check it."""

    name: str
    networks: list[str]
    http_url: str
    tftp_host: str
    vendor_ids: tuple[str, ...] | None  # None: every vendor
    probes: list[Probe] = field(default_factory=list)

    def render(self, server: str) -> str:
        """The generated file for `server`."""
        vendors = [v for v in VENDORS if self.vendor_ids is None or v.id in self.vendor_ids]
        return render_dhcp(
            server,  # type: ignore[arg-type]
            self.name,
            self.networks,
            http_url=self.http_url,
            tftp_host=self.tftp_host,
            vendors=vendors,
        )


PC = Probe("a PC", "52:54:00:12:34:56", "MSFT 5.0", {})
URL_A = b"http://192.0.2.10/"
URL_B = b"https://prov.example.com:8443/prov/"
URL_C = b"http://prov.example.com:8080/"
SITES = [
    Site(
        "Head Office",
        ["10.1.0.0/16", "10.2.0.0/24"],
        URL_A.decode(),
        "192.0.2.10",
        None,
        [
            Probe("Yealink", "00:15:65:4a:b9:3e", None, {66: URL_A}),
            Probe("Yealink DECT", "24:9a:d8:d1:a6:31", None, {66: URL_A}),
            Probe("Polycom", "64:16:7f:01:02:03", None, {66: URL_A, 160: URL_A}),
            Probe(
                "Cisco 7960",
                "00:1e:4a:aa:bb:cc",
                "Cisco Systems, Inc. IP Phone CP-7960G",
                {66: b"192.0.2.10", 150: bytes([192, 0, 2, 10])},
            ),
            Probe("Grandstream", "00:0b:82:8a:a8:72", None, {66: URL_A}),
            Probe("Snom", "00:04:13:92:2d:24", None, {66: URL_A}),
            Probe("Fanvil", "0c:38:3e:07:e1:6c", None, {66: URL_A}),
            Probe("Gigaset", "7c:2f:80:e0:d6:05", None, {66: URL_A, 114: URL_A}),
            Probe("Mitel by MAC", "14:00:e9:1b:45:24", None, {66: URL_A}),
            Probe("Aastra by class", "02:00:00:00:00:01", "AastraIPPhone6731i", {66: URL_A}),
            Probe("Panasonic", "00:80:f0:c8:c3:81", None, {66: URL_A, 160: URL_A}),
            Probe("Htek", "00:1f:c1:00:00:01", None, {66: URL_A}),
            PC,
            Probe("a Cisco access point", "00:1e:4a:00:00:01", "Cisco AP c3700", {}),
        ],
    ),
    Site(
        "Branch/2 (HTTPS, TFTP by name)",
        ["10.20.0.0/22", "2001:db8:1::/64"],
        URL_B.decode(),
        "tftp.example.com",
        None,
        [
            Probe("Yealink", "80:5e:c0:00:00:01", None, {66: URL_B}),
            Probe(
                "Cisco 8841",
                "00:56:2b:04:36:15",
                "Cisco Systems, Inc. IP Phone CP-8841",
                {66: b"tftp.example.com"},  # no 150: it lists addresses only
            ),
            Probe("Gigaset", "58:9e:c6:00:00:01", None, {66: URL_B, 114: URL_B}),
            PC,
        ],
    ),
    Site(
        "Warehouse",
        ["172.16.5.0/24"],
        URL_C.decode(),
        "198.51.100.7",
        ("cisco_sep", "polycom"),
        [
            Probe("Polycom", "00:04:f2:00:00:01", None, {66: URL_C, 160: URL_C}),
            Probe(
                "Cisco 7940",
                "00:1e:4a:aa:bb:cd",
                "Cisco Systems, Inc. IP Phone CP-7940G",
                {66: b"198.51.100.7", 150: bytes([198, 51, 100, 7])},
            ),
            Probe("Yealink (not at this site)", "00:15:65:00:00:01", None, {}),
            PC,
        ],
    ),
]


def require(tool: str) -> str:
    """The daemon's path (it lives in /usr/sbin), or a failure naming its Debian package."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{tool} is missing: install the Debian package {PACKAGES[tool]}")
    return path


def run_check(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a check-mode command with a bound on its time."""
    return subprocess.run(
        command, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False
    )


# -- configurations that include the generated file ------------------------------------------


def isc_wrapper(tmp: Path, included: Path) -> Path:
    """dhcpd.conf: the include at the top level, and a dummy subnet (dhcpd needs one)."""
    path = tmp / "dhcpd.conf"
    path.write_text(
        f'include "{included}";\nsubnet 192.0.2.0 netmask 255.255.255.0 {{\n}}\n',
        encoding="utf-8",
    )
    return path


def kea_wrapper(tmp: Path, included: Path, *, serve_port: int | None = None) -> Path:
    """kea-dhcp4.conf with the include inside "Dhcp4" (+ for serving: lo, memfile leases)."""
    subnet = "127.0.0.0/8" if serve_port else "192.0.2.0/24"
    interfaces = (
        '{"interfaces": ["lo"], "dhcp-socket-type": "udp"}' if serve_port else '{"interfaces": []}'
    )
    path = tmp / "kea-dhcp4.conf"
    path.write_text(
        "{\n"
        '"Dhcp4": {\n'
        f'    <?include "{included}"?>,\n'
        f'    "interfaces-config": {interfaces},\n'
        '    "lease-database": {"type": "memfile", "persist": false},\n'
        f'    "subnet4": [{{"id": 1, "subnet": "{subnet}"}}],\n'
        '    "loggers": [{"name": "kea-dhcp4", "severity": "WARN",\n'
        '                 "output_options": [{"output": "stdout"}]}]\n'
        "}\n"
        "}\n",
        encoding="utf-8",
    )
    return path


def dnsmasq_wrapper(tmp: Path, included: Path, server_port: int, client_port: int) -> Path:
    """dnsmasq.conf: DHCP only, on lo, answering DHCPINFORM; includes the generated file."""
    path = tmp / "dnsmasq.conf"
    path.write_text(
        "port=0\n"
        "interface=lo\n"
        "bind-interfaces\n"
        "dhcp-range=127.0.0.0,static\n"
        f"dhcp-alternate-port={server_port},{client_port}\n"
        "leasefile-ro\n"
        f"pid-file={tmp / 'dnsmasq.pid'}\n"
        f"conf-file={included}\n",
        encoding="utf-8",
    )
    return path


def write_generated(tmp: Path, site: Site, server: str) -> Path:
    """The generated file, saved where the wrapper includes it from."""
    path = tmp / f"provisiond-{server}.conf"
    path.write_text(site.render(server), encoding="utf-8")
    return path


# -- check modes ----------------------------------------------------------------------------


def check_dnsmasq(tmp: Path, included: Path) -> subprocess.CompletedProcess[str]:
    """`dnsmasq --test` reads the generated file alone: it is a complete dnsmasq file."""
    return run_check([require("dnsmasq"), "--test", f"--conf-file={included}"])


def check_isc(tmp: Path, included: Path) -> subprocess.CompletedProcess[str]:
    """`dhcpd -t` on a dhcpd.conf that includes the generated file."""
    config = isc_wrapper(tmp, included)
    return run_check([require("dhcpd"), "-4", "-t", "-cf", str(config)])


def check_kea(tmp: Path, included: Path) -> subprocess.CompletedProcess[str]:
    """`kea-dhcp4 -t` on a kea-dhcp4.conf that includes the generated file."""
    return run_check([require("kea-dhcp4"), "-t", str(kea_wrapper(tmp, included))])


CHECKS = {"dnsmasq": check_dnsmasq, "isc": check_isc, "kea": check_kea}


@pytest.mark.parametrize("server", sorted(CHECKS))
@pytest.mark.parametrize("site", SITES, ids=lambda s: s.name)
def test_the_daemon_accepts_the_generated_file(server: str, site: Site, tmp_path: Path) -> None:
    included = write_generated(tmp_path, site, server)
    result = CHECKS[server](tmp_path, included)
    assert result.returncode == 0, f"{server} refused:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("server", sorted(CHECKS))
def test_the_check_reads_the_generated_file(server: str, tmp_path: Path) -> None:
    """A control: the same check refuses the file once it is broken, so it really reads it."""
    included = write_generated(tmp_path, SITES[0], server)
    text = included.read_text(encoding="utf-8")
    broken = {"dnsmasq": text + "no-such-directive\n", "isc": text + "class {\n"}
    included.write_text(broken.get(server, text.replace('"test"', '"tset"', 1)), "utf-8")
    result = CHECKS[server](tmp_path, included)
    assert result.returncode != 0, f"{server} accepted a broken file"


# -- real exchanges -------------------------------------------------------------------------


def dhcp_inform(probe: Probe, server_port: int, client_port: int) -> dict[int, bytes] | None:
    """Send a DHCPINFORM from 127.0.0.1 as `probe`; the reply's options, or None on silence."""
    xid = os.urandom(4)
    chaddr = bytes.fromhex(probe.mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack(
        "!BBBB4sHH4s4s4s4s16s64s128s",
        1,  # BOOTREQUEST
        1,  # Ethernet
        6,
        0,
        xid,
        0,
        0,
        socket.inet_aton("127.0.0.1"),  # ciaddr: INFORM comes from a configured client
        bytes(4),
        bytes(4),
        bytes(4),
        chaddr,
        b"",
        b"",
    )
    options = b"\x63\x82\x53\x63" + bytes([53, 1, 8, 55, len(PROVISIONING_OPTIONS)])
    options += bytes(PROVISIONING_OPTIONS)
    if probe.vendor_class:
        options += bytes([60, len(probe.vendor_class)]) + probe.vendor_class.encode()
    options += b"\xff"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", client_port))
        sock.settimeout(REPLY_WAIT_S)
        sock.sendto(header + options, ("127.0.0.1", server_port))
        try:
            reply = sock.recv(4096)
        except TimeoutError:
            return None
    assert reply[4:8] == xid
    return parse_options(reply[240:])


def parse_options(data: bytes) -> dict[int, bytes]:
    """DHCP options as code -> value (PAD skipped, stops at END)."""
    found: dict[int, bytes] = {}
    index = 0
    while index < len(data) and data[index] != 255:
        if data[index] == 0:
            index += 1
            continue
        length = data[index + 1]
        found[data[index]] = data[index + 2 : index + 2 + length]
        index += 2 + length
    return found


def provisioning_options(reply: dict[int, bytes]) -> dict[int, bytes]:
    """Only the options we generate. dnsmasq NUL-terminates option 66 (its "tftp-server"
    is a name); phones read it as a C string, so the terminator is not compared."""
    return {c: v.rstrip(b"\0") for c, v in reply.items() if c in PROVISIONING_OPTIONS}


@contextmanager
def running(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a daemon in the foreground; stop it afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_answering(
    process: subprocess.Popen[bytes], log: Path, ports: tuple[int, int]
) -> None:
    """Bounded: repeat a DHCPINFORM until the daemon answers, failing if it exits."""
    for _ in range(START_ATTEMPTS):
        if process.poll() is not None:
            pytest.fail(f"the daemon exited:\n{log.read_text(errors='replace')}")
        if dhcp_inform(PC, *ports) is not None:
            return
    pytest.fail(f"the daemon never answered:\n{log.read_text(errors='replace')}")


def serve_dnsmasq(tmp: Path, included: Path, ports: tuple[int, int]) -> list[str]:
    """The dnsmasq command serving DHCP on lo with the generated file."""
    config = dnsmasq_wrapper(tmp, included, *ports)
    return [require("dnsmasq"), "--keep-in-foreground", f"--conf-file={config}"]


def serve_kea(tmp: Path, included: Path, ports: tuple[int, int]) -> list[str]:
    """The kea-dhcp4 command serving DHCP on lo with the generated file."""
    config = kea_wrapper(tmp, included, serve_port=ports[0])
    return [require("kea-dhcp4"), "-p", str(ports[0]), "-P", str(ports[1]), "-c", str(config)]


SERVERS_ON_LOOPBACK = {"dnsmasq": serve_dnsmasq, "kea": serve_kea}


@pytest.mark.parametrize("server", sorted(SERVERS_ON_LOOPBACK))
@pytest.mark.parametrize("site", SITES, ids=lambda s: s.name)
def test_each_phone_gets_its_options(server: str, site: Site, tmp_path: Path) -> None:
    included = write_generated(tmp_path, site, server)
    ports = (free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM))
    command = SERVERS_ON_LOOPBACK[server](tmp_path, included, ports)
    # Kea writes its PID file and lock file into these; the Debian defaults need root's /run.
    env = {**os.environ, "KEA_PIDFILE_DIR": str(tmp_path), "KEA_LOCKFILE_DIR": "none"}
    log = tmp_path / f"{server}.log"
    with running(command, log, env) as process:
        wait_until_answering(process, log, ports)
        got = {}
        for probe in site.probes:
            reply = dhcp_inform(probe, *ports)
            assert reply is not None, f"no answer for {probe.name}"
            got[probe.name] = provisioning_options(reply)
    assert got == {probe.name: probe.expected for probe in site.probes}
