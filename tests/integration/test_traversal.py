"""Hostile paths over HTTP and TFTP never leave the template and firmware roots.

A secret file sits next to (outside) the firmware directory, symlinks inside the firmware
directory point out of it, and a table of traversal tricks (dot segments, percent-encoded and
double-encoded dots and slashes, absolute paths, backslashes, NUL, unicode look-alikes, overlong
names, template file names) is sent:

- over HTTP on a raw asyncio TCP connection that writes the request line byte for byte, so no
  client library can normalise the path, and again with ``curl --path-as-is``;
- over TFTP as raw RRQ packets (the literal name and its percent-decoded bytes), and a few WRQs.

Every answer is a 4xx (or a TFTP ERROR), never a 5xx, never the secret, /etc/passwd or a
template's source; afterwards the same server still serves the device file and the firmware.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import pytest

from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate
from tests.integration.phone_stack import PhoneStack
from tests.tftp_helpers import ERROR, RRQ, WRQ, RawClient, block_of, opcode_of

MAC = "001565aabbcc"
PASSWORD = "s3cretPassw0rd"
YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
SECRET = b"TOP-SECRET-6f1d2c-never-serve-me"
FIRMWARE_NAME = "T46S-66.86.0.15.rom"
FIRMWARE = os.urandom(3000)  # a few TFTP blocks; fresh per run, compared byte for byte
# What must never appear in an answer: the secret, /etc/passwd, a template's source.
LEAKS = (SECRET, b"root:x:0:0", b"{{", b"{%", b"[[files]]", b"pattern = ")
LONG_TARGET = 8190  # aiohttp refuses longer request lines (it may reset the connection)

# Paths as a client puts them on the wire (after the leading "/" of an HTTP target).
HOSTILE: tuple[str, ...] = (
    # dot segments, plain and encoded
    "../secret.txt",
    "../../secret.txt",
    "..%2fsecret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    ".%2e/secret.txt",
    "%252e%252e%252fsecret.txt",
    "..%252fsecret.txt",
    "....//....//etc/passwd",
    "..././..././secret.txt",
    "./../secret.txt",
    "..;/secret.txt",
    "/".join([".."] * 40) + "/etc/passwd",
    # absolute paths
    "/etc/passwd",
    "//etc/passwd",
    "///etc/passwd",
    "%2fetc%2fpasswd",
    "file:///etc/passwd",
    "~root/.ssh/id_rsa",
    "~/secret.txt",
    # backslashes
    "..\\secret.txt",
    "..\\..\\etc\\passwd",
    "%5c..%5csecret.txt",
    "..%5csecret.txt",
    "C:\\Windows\\win.ini",
    # NUL
    "file%00.rom",
    "secret.txt%00",
    f"{MAC}.cfg%00.rom",
    "%00../secret.txt",
    # the prefix and a real device name as a stepping stone
    "prov/../../secret.txt",
    "prov/%2e%2e/%2e%2e/secret.txt",
    "prov/..%2f..%2fsecret.txt",
    f"{MAC}.cfg/../../secret.txt",
    f"./{MAC}.cfg/../../../secret.txt",
    # firmware-looking names with traversal (firmware is the one file-system lookup)
    "../../etc/passwd.rom",
    "..%2f..%2fsecret.rom",
    "../secret.rom",
    "%2e%2e%2fsecret.rom",
    "..\\secret.rom",
    "secret.rom%00.rom",
    "fw/../../secret.rom",
    ".../secret.rom",
    # symlinks inside the firmware directory that point outside it
    "evil.rom",
    "passwd.rom",
    "up/secret.rom",
    # unicode look-alikes and overlong UTF-8 dots
    "%c0%ae%c0%ae/secret.txt",
    "%c0%ae%c0%ae%c0%afsecret.txt",
    "..%c0%afsecret.txt",
    "%e2%80%a4%e2%80%a4/secret.txt",  # U+2024 ONE DOT LEADER
    "%ef%bc%8e%ef%bc%8e/secret.txt",  # U+FF0E FULLWIDTH FULL STOP
    "%u002e%u002e/secret.txt",
    # template sources
    "yealink/mac.cfg.j2",
    "yealink/vendor.toml",
    "vendor.toml",
    "mac.cfg.j2",
    "_settings.cfg.j2",
    "../phone_templates/yealink/mac.cfg.j2",
    "phone_templates/yealink/common.cfg.j2",
    # overlong
    "a" * 300 + ".rom",
    "../" * 1666 + "secret.txt",  # ~5,000 characters
    "A" * 70_000,
)
# Raw bytes no HTTP client would send as they are (aiohttp's parser refuses them).
RAW_HOSTILE: tuple[bytes, ...] = (
    b"file\x00.rom",
    "\uff0e\uff0e/secret.txt".encode(),
    b"\xc0\xae\xc0\xae/secret.txt",
    b"..\tsecret.txt",
)


@dataclass(frozen=True)
class RawReply:
    """One raw HTTP answer; `status` is 0 when the server closed without a status line."""

    status: int
    head: bytes
    body: bytes


def parse_reply(data: bytes) -> RawReply:
    """Split a whole HTTP/1.x answer (read until the server closed) into its parts."""
    head, _, body = data.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        return RawReply(0, head, body)
    return RawReply(int(fields[1]), head, body)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until EOF; what arrived before a reset is kept."""
    data = bytearray()
    with contextlib.suppress(ConnectionError):
        for _ in range(100_000):  # bounded: 6.5 GB at 64 KiB a read
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    return bytes(data)


async def raw_http(
    port: int,
    target: bytes,
    *,
    method: bytes = b"GET",
    headers: Iterable[bytes] = (),
    body: bytes | None = None,
    timeout: float = 10.0,
    source: str | None = None,
) -> RawReply:
    """Send one request exactly as given (target, header lines, body) and read the answer.

    `Connection: close` makes the server end the answer by closing, so reading to EOF is the
    whole answer. The answer is read while the body is still being sent: a server that refuses
    early (413, 400) and closes resets the connection, and its answer must not be lost with it.
    A reset before any answer (an oversized request line) reads as status 0. `source` is the
    local address to connect from (any 127.x.y.z: a distinct phone).
    """
    local = None if source is None else (source, 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += list(headers)
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    reading = asyncio.ensure_future(_read_all(reader))
    payload = body or b""
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        for offset in range(0, len(payload), 65536):
            if reading.done() or writer.is_closing():
                break  # answered (and closed) before taking the whole body
            writer.write(payload[offset : offset + 65536])
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        data = await asyncio.wait_for(reading, timeout)
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_reply(data)


def must_be_bad_request(path: str) -> bool:
    """True for what the resolver's contract answers 400 (TFTP: ERROR 4), not just any 4xx.

    `path` is what reaches the resolver (decoded, prefix removed). The contract names dot
    segments, backslashes, NUL and names over 255 characters; other odd characters may get a
    400 or a 404, both fine.
    """
    name = path.lstrip("/")
    parts = name.split("/")
    return "." in parts or ".." in parts or "\\" in name or "\0" in name or len(name) > 255


def resolver_path(target: bytes) -> str | None:
    """The path the resolver gets for an HTTP origin-form target; None for other forms."""
    if not target.startswith(b"/"):
        return None
    path = unquote(target.split(b"?", 1)[0].decode("latin-1"), errors="replace")
    return path[len("/prov/") :] if path.startswith("/prov/") else path


def http_refused(target: bytes, status: int) -> bool:
    """A 4xx, and exactly 400 where the contract says so; a reset only for overlong targets."""
    if len(target) > LONG_TARGET:
        return status == 0 or 400 <= status < 500
    path = resolver_path(target)
    if path is not None and must_be_bad_request(path):
        return status == 400
    return 400 <= status < 500


def leaked(data: bytes) -> list[bytes]:
    """The markers of forbidden content found in `data`."""
    return [marker for marker in LEAKS if marker in data]


def http_targets() -> list[bytes]:
    """Every hostile path as a request target, at the root and under the "prov" prefix."""
    targets: list[bytes] = []
    for path in HOSTILE:
        raw = path.encode()
        if "://" in path:
            targets.append(raw)  # absolute-form target: sent as it is
            continue
        targets.append(raw if raw.startswith(b"/") else b"/" + raw)
        targets.append(b"/prov" + (raw if raw.startswith(b"/") else b"/" + raw))
    targets += [b"/" + raw for raw in RAW_HOSTILE]
    targets.append(b"http://evil.example/../secret.txt")
    return targets


def tftp_names() -> list[bytes]:
    """Every hostile path as a TFTP file name: literal, and percent-decoded when different."""
    names: dict[bytes, None] = {}
    for path in HOSTILE:
        names[path.encode()] = None
        names[unquote_to_bytes(path)] = None
    for raw in RAW_HOSTILE:
        names[raw] = None
    return list(names)


async def provision(services: Services) -> None:
    """A Yealink T46S owned by a user, with a known SIP password."""
    user = await services.users.create(
        UserCreate(username="mrossi", display_name="Mario Rossi", main_extension="200"), "test"
    )
    await services.devices.create(
        DeviceCreate(
            extension="200",
            model="yealink-t46s",
            mac=MAC,
            user_id=user["id"],
            sip_password=PASSWORD,
        ),
        "test",
    )


def plant_files(firmware_dir: Path, outside: Path) -> None:
    """The firmware image, secrets outside the root, and symlinks leading out of it."""
    firmware_dir.mkdir(parents=True, exist_ok=True)
    (firmware_dir / FIRMWARE_NAME).write_bytes(FIRMWARE)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "secret.rom").write_bytes(SECRET)
    (firmware_dir / "evil.rom").symlink_to(outside / "secret.rom")
    (firmware_dir / "passwd.rom").symlink_to("/etc/passwd")
    (firmware_dir / "up").symlink_to(outside, target_is_directory=True)
    # A symlink that stays inside the root: served, which shows the refusals above are due
    # to the root check and not to symlinks being unusable.
    (firmware_dir / "alias.rom").symlink_to(firmware_dir / FIRMWARE_NAME)


@pytest.fixture
async def hostile_stack(phone_stack: PhoneStack, tmp_path: Path) -> PhoneStack:
    """The phone stack with a device, a firmware root with traps, and secrets outside it."""
    firmware_dir = phone_stack.services.ctx.settings.firmware_dir
    assert firmware_dir.parent == tmp_path  # the secret is really one level above the root
    plant_files(firmware_dir, tmp_path)
    await provision(phone_stack.services)
    return phone_stack


def port_of(stack: PhoneStack) -> int:
    """The phone HTTP port."""
    return int(stack.http_url.rstrip("/").rsplit(":", 1)[1])


async def assert_still_serving(stack: PhoneStack) -> None:
    """The device file (with its password) and the firmware are still served, by both paths."""
    port = port_of(stack)
    ua = b"User-Agent: " + YEALINK_UA.encode()
    device = await raw_http(port, f"/prov/{MAC}.cfg".encode(), headers=[ua])
    assert device.status == 200
    assert PASSWORD.encode() in device.body
    for name in (FIRMWARE_NAME, "alias.rom"):
        firmware = await raw_http(port, f"/prov/{name}".encode())
        assert (firmware.status, firmware.body) == (200, FIRMWARE), name

    def tftp() -> tuple[bytes, bytes]:
        with RawClient(stack.tftp_host, stack.tftp_port) as client:
            config = client.download(f"{MAC}.cfg")
        with RawClient(stack.tftp_host, stack.tftp_port) as client:
            image = client.download(FIRMWARE_NAME)
        return config.data, image.data

    config, image = await asyncio.to_thread(tftp)
    assert PASSWORD.encode() in config
    assert image == FIRMWARE


async def test_hostile_http_paths_stay_inside_the_roots(hostile_stack: PhoneStack) -> None:
    """A raw client's hostile targets: always 4xx, never a leak; then still serving."""
    await assert_still_serving(hostile_stack)  # the control: the legit names work
    port = port_of(hostile_stack)
    ua = b"User-Agent: " + YEALINK_UA.encode()
    failures = []
    for target in http_targets():
        for method in (b"GET", b"HEAD"):
            reply = await raw_http(port, target, method=method, headers=[ua])
            if not http_refused(target, reply.status) or leaked(reply.head + reply.body):
                failures.append((method, target[:80], reply.status, reply.body[:80]))
    assert not failures
    await assert_still_serving(hostile_stack)


def curl_url(base: str, target: bytes) -> str | None:
    """The URL curl is given for a target, or None for what curl cannot send verbatim."""
    text = target.decode("ascii", "replace")
    if not target.startswith(b"/") or not all(0x21 <= byte < 0x7F for byte in target):
        return None
    return base.rstrip("/") + text


async def curl(url: str, out: Path) -> tuple[int, bytes]:
    """GET with curl --path-as-is: (status, body); status 0 when curl got no answer."""
    process = await asyncio.create_subprocess_exec(
        shutil.which("curl") or "curl",
        *("--path-as-is", "--globoff", "-s", "-o", str(out), "-w", "%{http_code}", url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    body = out.read_bytes() if out.exists() else b""
    out.unlink(missing_ok=True)
    return int(stdout.decode() or 0), body


async def test_hostile_paths_with_curl_path_as_is(
    hostile_stack: PhoneStack, tmp_path: Path
) -> None:
    """The same table through curl, which sends dot segments unmerged with --path-as-is."""
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install the Debian package curl (CI installs it)")
    sent, failures = 0, []
    for target in http_targets():
        url = curl_url(hostile_stack.http_url, target)
        if url is None:
            continue
        status, body = await curl(url, tmp_path / "curl.out")
        sent += 1
        if not http_refused(target, status) or leaked(body):
            failures.append((target[:80], status, body[:80]))
    assert sent >= 80
    assert not failures
    await assert_still_serving(hostile_stack)


def rrq(name: bytes, opcode: int = RRQ) -> bytes:
    """A raw request packet; the name goes on the wire exactly as given (NUL included)."""
    return struct.pack("!H", opcode) + name + b"\0octet\0"


def tftp_answers(host: str, port: int, packets: list[bytes]) -> list[bytes]:
    """Send each packet from a fresh socket; the first answer to each (b"" on silence)."""
    answers = []
    for packet in packets:
        with RawClient(host, port, timeout=5) as client:
            client.sock.sendto(packet[:65507], (host, port))
            try:
                answers.append(client.recv()[0])
            except TimeoutError:
                answers.append(b"")
    return answers


def tftp_refused(name: bytes, answer: bytes) -> bool:
    """An ERROR; ILLEGAL_OPERATION (4) where the contract says "bad request"."""
    if len(answer) < 4 or opcode_of(answer) != ERROR:
        return False
    text = name.decode("latin-1")
    return block_of(answer) == 4 if must_be_bad_request(text) else True


async def test_hostile_tftp_names_get_an_error(hostile_stack: PhoneStack) -> None:
    """Raw RRQs with the hostile names: each gets an ERROR, never data; then still serving."""
    names = tftp_names()
    packets = [rrq(name) for name in names]
    answers = await asyncio.to_thread(
        tftp_answers, hostile_stack.tftp_host, hostile_stack.tftp_port, packets
    )
    failures = [
        (name[:80], answer[:40])
        for name, answer in zip(names, answers, strict=True)
        if not tftp_refused(name, answer) or leaked(answer)
    ]
    assert len(names) >= 60
    assert not failures
    await assert_still_serving(hostile_stack)


def tree(root: Path) -> list[str]:
    """Every path under `root` (symlinks not followed), minus SQLite's transient journals."""
    found = []
    for folder, dirs, files in os.walk(root):
        found += [os.path.join(folder, name) for name in dirs + files if ".db-" not in name]
    return sorted(found)


async def test_hostile_uploads_write_nothing_outside(
    hostile_stack: PhoneStack, tmp_path: Path
) -> None:
    """PUT/POST and WRQ to traversal names are refused and create no file anywhere."""
    before = tree(tmp_path)
    names = [
        f"../{MAC}-local.cfg",
        f"..%2f{MAC}-local.cfg",
        f"prov/../../{MAC}-local.cfg",
        f"../../pwned-{MAC}-local.cfg",
        "../secret.txt",
        "%2e%2e/secret.rom",
        f"{MAC}-local.cfg%00.txt",
        f"/tmp/{MAC}-local.cfg",
        f"..\\{MAC}-local.cfg",
    ]
    port = port_of(hostile_stack)
    for name in names:
        for method in (b"PUT", b"POST"):
            reply = await raw_http(port, b"/" + name.encode(), method=method, body=b"pwned=1\n")
            assert 400 <= reply.status < 500, (method, name, reply.status)
    packets = [rrq(unquote_to_bytes(name), WRQ) for name in names]
    answers = await asyncio.to_thread(
        tftp_answers, hostile_stack.tftp_host, hostile_stack.tftp_port, packets
    )
    assert all(answer and opcode_of(answer) == ERROR for answer in answers), answers
    assert tree(tmp_path) == before
    assert (tmp_path / "secret.txt").read_bytes() == SECRET
    await assert_still_serving(hostile_stack)
