"""The phone pipeline: PhoneRequest -> identify -> find the device -> template -> PhoneResponse.

Every transport (HTTP, HTTPS, TFTP) calls `Resolver.handle`; nothing here knows about
sockets, blocks or headers beyond the transport-neutral request.

Decisions, in order:
1. the path must be safe (no traversal, NUL, backslash, overlong) or the answer is 400;
2. the path is matched against every vendor's file names; no match -> 404;
3. a banned source is refused at once (unless it brings digest credentials: a phone behind a
   banned NAT still provisions);
4. per-MAC names: a User-Agent MAC that differs from the path's is refused (403); an unknown
   MAC -> 404 and an unprovisioned record; a known device is served from its own vendor's
   spec (so ``<mac>.cfg`` gives a Yealink file to a Yealink and a Polycom one to a Polycom),
   after the gate's policy checks (site networks, digest, certificate, first-boot lock, model);
5. common names are served without secrets; firmware comes from the firmware store, which
   refuses images that failed verification. Rendered files name the model's target firmware
   (`firmware.url`/`.version`) only when the phone reports another version (from this
   request's User-Agent, else the last one recorded) or none at all.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from provisiond.domain.identify import (
    FileKind,
    FileMatch,
    UserAgentInfo,
    VendorSpec,
    match_path,
    parse_user_agent,
)
from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.provisioning.activity import ActivitySink, Sighting, now
from provisiond.provisioning.bans import Ban
from provisiond.provisioning.context import build_context
from provisiond.provisioning.directory import ModelInfo, PhoneDevice, PhoneDirectory
from provisiond.provisioning.firmware import FirmwareStore
from provisiond.provisioning.gate import Gate
from provisiond.provisioning.render import Renderer, RenderError
from provisiond.provisioning.stats import PhoneStats
from provisiond.provisioning.uploads import UploadStore
from provisiond.storage.secrets import SecretBox

log = logging.getLogger(__name__)
MAX_PATH = 255
PATH_MEMO = 20_000  # distinct paths remembered: the names a storm is asking for right now
_SAFE_PATH = re.compile(r"[A-Za-z0-9._\-+~$@=,][A-Za-z0-9._\-+~$@=,/]*")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """How phones reach this server, for URLs rendered into files."""

    http_url: str  # ends with "/"
    tftp_host: str
    tftp_port: int


def safe_path(path: str) -> str | None:
    """The path without leading slashes when it stays inside our namespace, else None."""
    stripped = path.lstrip("/")
    if not stripped or len(stripped) > MAX_PATH or not _SAFE_PATH.fullmatch(stripped):
        return None
    if any(part in ("", ".", "..") for part in stripped.split("/")):
        return None
    return stripped


def _not_found(detail: str) -> PhoneResponse:
    return PhoneResponse(Outcome.NOT_FOUND, detail=detail)


class Resolver:
    """The one `PhoneHandler` of the process."""

    def __init__(
        self,
        vendors: tuple[VendorSpec, ...],
        renderer: Renderer,
        directory: PhoneDirectory,
        activity: ActivitySink,
        uploads: UploadStore,
        firmware_dir: Path,
        endpoints: Endpoints,
        secrets: SecretBox,
        gate: Gate,
        cache_size: int = 20_000,
        firmware: FirmwareStore | None = None,
    ) -> None:
        self.secrets = secrets
        self.gate = gate
        self.stats = PhoneStats()
        self._path_matches: dict[str, list[FileMatch]] = {}
        # Rendered files keyed by (directory revision, device revision, model, vendor,
        # template, firmware offered): everything a file depends on (settings and sites are in
        # the directory revision; the user, passwords and label in the device's; the context
        # reads no clock, and the endpoints, templates and tzdata are fixed for the process).
        # A change anywhere gives new keys, so entries never need invalidating; old ones
        # simply fall out of the LRU.
        self.cache_size = cache_size
        self._cache: OrderedDict[
            tuple[int, int, str, str, str | None, tuple[str, str]], PhoneResponse
        ] = OrderedDict()
        self.vendors = vendors
        self.renderer = renderer
        self.directory = directory
        self.activity = activity
        self.uploads = uploads
        self.firmware_dir = firmware_dir
        # Verified at start-up when not given (hashes every listed image once).
        self.firmware = firmware or FirmwareStore.open(firmware_dir)
        self.endpoints = endpoints

    def _matches(self, path: str) -> list[FileMatch]:
        """`match_path`, memoised: a boot storm asks for the same names again and again, and
        trying every vendor's patterns is a fifth of a request's cost otherwise."""
        found = self._path_matches.get(path)
        if found is None:
            found = match_path(self.vendors, path)
            if len(self._path_matches) >= PATH_MEMO:
                self._path_matches.clear()  # crude but bounded; refills with the hot names
            self._path_matches[path] = found
        return found

    def upload_limit(self, request: PhoneRequest) -> int | None:
        """The byte cap for an upload to this path, or None when nothing may be uploaded there."""
        path = safe_path(request.path)
        if path is None:
            return None
        for match in self._matches(path):
            if match.spec.kind is FileKind.UPLOAD:
                return match.spec.max_upload
        return None

    async def handle(self, request: PhoneRequest) -> PhoneResponse:
        """Answer one phone request (and count it)."""
        answer = await self._handle(request)
        self.stats.record(request, answer, answer.vendor)
        return answer

    async def _handle(self, request: PhoneRequest) -> PhoneResponse:
        path = safe_path(request.path)
        if path is None:
            return PhoneResponse(Outcome.BAD_REQUEST, detail="invalid path")
        ban = self.gate.banned(request)
        matches = self._matches(path)
        if ban is not None and request.header("authorization") is None:
            # Cheap: no device lookup for a banned walker. A per-device path inside a digest
            # site is answered with a challenge, so a phone behind a banned NAT can log in.
            if any(m.mac is not None for m in matches):
                return self.gate.banned_answer(request, ban, await self.directory.sites())
            return self.gate.refuse_banned(ban)
        if not matches:
            return _not_found("unknown file")
        agent = parse_user_agent(self.vendors, request.user_agent)
        per_mac = [m for m in matches if m.mac is not None]
        if per_mac:
            return await self._per_device(request, path, per_mac, agent, ban)
        if ban is not None:
            return self.gate.refuse_banned(ban)
        if request.method in ("PUT", "POST"):
            return PhoneResponse(Outcome.BAD_REQUEST, detail="uploads only to per-device names")
        return await self._shared(request, path, _prefer(matches, agent), agent)

    async def _per_device(
        self,
        request: PhoneRequest,
        path: str,
        matches: list[FileMatch],
        agent: UserAgentInfo | None,
        ban: Ban | None,
    ) -> PhoneResponse:
        mac = matches[0].mac
        assert mac is not None
        if agent is not None and agent.mac is not None and agent.mac != mac:
            return self.gate.suspicious(request, f"User-Agent MAC {agent.mac} differs from path")
        device = await self.directory.device_by_mac(mac)
        sites = await self.directory.sites()
        if device is None:
            if ban is not None:
                return self.gate.refuse_banned(ban)
            self.activity.unknown(self._sighting(request, path, mac, agent, matches))
            site = self.gate.site_for(request.client_ip, sites)
            return self.gate.unknown_mac(request, mac, site)
        match = next((m for m in matches if m.vendor.id == device.model.vendor), None)
        if match is None:
            return _not_found(f"not a {device.model.vendor} file")
        if match.spec.kind is FileKind.OPTIONAL:
            return _not_found("not served")
        locked = device.locked_site_id  # the directory applies a new lock at once
        access = self.gate.check(request, match.spec.kind, device, sites, ban, locked)
        if access.refusal is not None:
            return access.refusal
        refusal = self.gate.model_refusal(request, agent, device)
        if refusal is not None:
            return refusal
        self.activity.seen(device.id, self._sighting(request, path, mac, agent, matches))
        site = access.site
        if site is not None and site.lock_on_first_boot and site.id is not None and not locked:
            self.activity.lock(device.id, site.id)
            self.directory.note_lock(device.id, site.id)
        if match.spec.kind is FileKind.UPLOAD:
            return await self._upload(request, path, match, device)
        if request.method in ("PUT", "POST"):
            return PhoneResponse(Outcome.BAD_REQUEST, detail="this file cannot be uploaded")
        reported = agent.firmware if agent is not None and agent.firmware else device.firmware
        return await self._render(match, device.model, device, reported)

    @staticmethod
    def _sighting(
        request: PhoneRequest,
        path: str,
        mac: str,
        agent: UserAgentInfo | None,
        matches: list[FileMatch],
    ) -> Sighting:
        return Sighting(
            mac=mac,
            at=now(),
            ip=request.client_ip,
            user_agent=request.user_agent,
            firmware=agent.firmware if agent else None,
            path=path,
            vendor=(agent.vendor.id if agent else _only_vendor(matches)),
            model_guess=agent.model if agent else None,
        )

    async def _upload(
        self, request: PhoneRequest, path: str, match: FileMatch, device: PhoneDevice
    ) -> PhoneResponse:
        name = path.rsplit("/", 1)[-1]
        if request.method in ("PUT", "POST"):
            body = request.body or b""
            limit = match.spec.max_upload or 0
            if len(body) > limit:
                return PhoneResponse(Outcome.TOO_LARGE, detail=f"upload over {limit} bytes")
            await self.uploads.save(device.mac, name, body)
            return PhoneResponse(Outcome.OK, content_type="text/plain")
        stored = await self.uploads.load(device.mac, name)
        if stored is None:
            return _not_found("nothing uploaded under this name")
        return PhoneResponse(
            Outcome.OK, body=stored, content_type=match.spec.content_type, etag=_etag(stored)
        )

    async def _shared(
        self, request: PhoneRequest, path: str, match: FileMatch, agent: UserAgentInfo | None
    ) -> PhoneResponse:
        kind = match.spec.kind
        if kind is FileKind.OPTIONAL:
            return _not_found("not served")
        if kind is FileKind.FIRMWARE:
            return self._firmware(path)
        model = None
        if match.family is not None:
            model = await self._model(match.vendor.id, match.family)
            if model is None:
                return _not_found(f"unknown {match.vendor.id} model {match.family}")
        return await self._render(match, model, None, agent.firmware if agent else None)

    async def _model(self, vendor: str, family: str) -> ModelInfo | None:
        wanted = family.lower()
        return next(
            (
                m
                for m in await self.directory.models()
                if m.vendor == vendor and m.family.lower() == wanted
            ),
            None,
        )

    def _firmware(self, path: str) -> PhoneResponse:
        self.firmware.poll()
        if not self.firmware.is_servable(path):
            return _not_found("no such firmware")  # flagged by verification: never served
        candidate = self.firmware_dir / path
        try:
            resolved = candidate.resolve(strict=True)
            inside = resolved.is_relative_to(self.firmware_dir.resolve())
        except OSError:
            return _not_found("no such firmware")
        if not inside or not resolved.is_file():
            return _not_found("no such firmware")
        return PhoneResponse(Outcome.OK, file=resolved, content_type="application/octet-stream")

    def _firmware_offer(self, model: ModelInfo | None, reported: str | None) -> tuple[str, str]:
        """(url, version) of the model's target image when the phone runs something else."""
        if model is None:
            return "", ""
        self.firmware.poll()
        image = self.firmware.target_for(model.id)
        if image is None or image.version == reported:
            return "", ""
        return self.endpoints.http_url + image.file, image.version

    async def _render(
        self,
        match: FileMatch,
        model: ModelInfo | None,
        device: PhoneDevice | None,
        reported: str | None = None,
    ) -> PhoneResponse:
        """A rendered file, from the render cache when the directory can vouch it is current."""
        offer = self._firmware_offer(model, reported)
        revision = self.directory.revision()
        if revision is None:
            return await self._render_now(match, model, device, offer)
        key = (
            revision,
            device.revision if device is not None else 0,
            model.id if model is not None else "",
            match.vendor.id,
            match.spec.template,
            offer,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        answer = await self._render_now(match, model, device, offer)
        self._cache[key] = answer
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return answer

    async def _render_now(
        self,
        match: FileMatch,
        model: ModelInfo | None,
        device: PhoneDevice | None,
        offer: tuple[str, str] = ("", ""),
    ) -> PhoneResponse:
        kind = match.spec.kind
        context = build_context(
            kind,
            vendor=match.vendor,
            platform=await self.directory.platform(),
            # Digest credentials only in the protected per-device file (a boot file is served
            # inside the site without credentials, so it must not carry them).
            provisioning=self._provisioning(device if kind is FileKind.DEVICE else None),
            model=model,
            device=device,
            sip_password=self._open(device.sip_password_sealed)
            if device is not None and kind is FileKind.DEVICE
            else "",
            firmware_url=offer[0],
            firmware_version=offer[1],
        )
        started = time.perf_counter()
        try:
            body = self.renderer.render(match.vendor.id, match.spec, context)
            self.stats.rendered(time.perf_counter() - started)
        except RenderError:
            log.exception("rendering %s for %s failed", match.spec.template, match.vendor.id)
            raise
        return PhoneResponse(
            Outcome.OK,
            body=body,
            content_type=match.spec.content_type,
            etag=_etag(body),
            last_modified=device.updated_at if device is not None else None,
            vendor=match.vendor.id,
        )

    def _provisioning(self, device: PhoneDevice | None) -> dict[str, object]:
        """URLs, and the device's own digest credentials for the files that carry them."""
        ends = self.endpoints
        sealed = device.provisioning_password_sealed if device is not None else None
        return {
            "base_url": ends.http_url,
            "http_url": ends.http_url,
            "tftp_host": ends.tftp_host,
            "tftp_port": ends.tftp_port,
            "username": device.mac if sealed and device is not None else "",
            "password": self._open(sealed) if sealed else "",
        }

    def _open(self, sealed: str) -> str:
        """Decrypt a stored secret (microseconds; the key never leaves memory)."""
        return self.secrets.decrypt(sealed)


def _prefer(matches: list[FileMatch], agent: UserAgentInfo | None) -> FileMatch:
    """Among shared files, the User-Agent's vendor wins; else the first vendor that has it."""
    if agent is not None:
        for match in matches:
            if match.vendor.id == agent.vendor.id:
                return match
    return matches[0]


def _only_vendor(matches: list[FileMatch]) -> str | None:
    vendors = {m.vendor.id for m in matches}
    return vendors.pop() if len(vendors) == 1 else None


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
