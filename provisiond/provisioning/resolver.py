"""The phone pipeline: PhoneRequest -> identify -> find the device -> template -> PhoneResponse.

Every transport (HTTP, HTTPS, TFTP) calls `Resolver.handle`; nothing here knows about
sockets, blocks or headers beyond the transport-neutral request.

Decisions, in order:
1. the path must be safe (no traversal, NUL, backslash, overlong) or the answer is 400;
2. the path is matched against every vendor's file names; no match -> 404; names we never
   serve (trust lists, encrypted variants) -> 404 for every MAC, before any lookup;
3. shared names (common and model files, firmware): served without secrets to anyone not
   banned;
4. per-MAC names: the device is looked up and the gate admits the request once
   (`Gate.admit`): ban, User-Agent/path MAC consistency, the device's own site, the site's
   policy (digest, certificate), the walk memory and the model check. Every "not for you"
   (unknown MAC, a known MAC under another vendor's name, a device of another site, a ban) gets
   the one answer of the source's site, so no answer tells a known MAC from an unknown one. A
   known device is served from its own vendor's spec (``<mac>.cfg`` gives a Yealink file to a
   Yealink and a Polycom one to a Polycom);
5. rendered files name the model's target firmware (`firmware.url`/`.version`) only when the
   phone reports another version (from this request's User-Agent, else the last one recorded)
   or none at all; firmware comes from the firmware store, which refuses images that failed
   verification.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
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
from provisiond.provisioning.context import Endpoints, RenderInputs, render_key
from provisiond.provisioning.directory import ModelInfo, PhoneDevice, PhoneDirectory
from provisiond.provisioning.firmware import FirmwareStore
from provisiond.provisioning.gate import Gate
from provisiond.provisioning.render import Renderer, RenderError
from provisiond.provisioning.stats import PhoneStats
from provisiond.provisioning.uploads import UploadNotStored, UploadStore
from provisiond.storage.secrets import SecretBox

log = logging.getLogger(__name__)
MAX_PATH = 255
IDENTITY_MEMO = 20_000  # (path, User-Agent) pairs remembered: what a storm is asking right now
UPLOADS_PENDING = 10_000  # admitted uploads whose body is still coming
UPLOAD_ADMISSION_S = 300.0  # longer than any body timeout: then the upload is decided again
_SAFE_PATH = re.compile(r"[A-Za-z0-9._\-+~$@=,][A-Za-z0-9._\-+~$@=,/]*")


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
        firmware: FirmwareStore,
        endpoints: Endpoints,
        secrets: SecretBox,
        gate: Gate,
        cache_size: int = 20_000,
    ) -> None:
        self.secrets = secrets
        self.gate = gate
        self.stats = PhoneStats()
        self._identities: dict[tuple[str, str | None], _Identity] = {}
        self._uploads_admitted: OrderedDict[PhoneRequest, tuple[float, _Admitted]] = OrderedDict()
        # Rendered files keyed by RenderInputs.key(): everything a file depends on (templates
        # and tzdata are fixed for the process). A change anywhere gives a new key, so entries
        # never need invalidating; old ones simply fall out of the LRU.
        self.cache_size = cache_size
        self._cache: OrderedDict[Hashable, PhoneResponse] = OrderedDict()
        # The phone books: the newest render per (vendor, template) only. In the LRU above an
        # old revision (megabytes for a large company) would stay until 20,000 other files
        # pushed it out: every directory change followed by a fetch grew the process.
        self._books: dict[tuple[str, str | None], tuple[Hashable, PhoneResponse]] = {}
        self.vendors = vendors
        self.renderer = renderer
        self.directory = directory
        self.activity = activity
        self.uploads = uploads
        self.firmware = firmware
        self.endpoints = endpoints

    @property
    def firmware_dir(self) -> Path:
        """Where the firmware images are (the store's root)."""
        return self.firmware.root

    def _identify(self, path: str, user_agent: str | None) -> _Identity:
        """What a path and User-Agent name: the safe path, the files it matches (per-MAC ones
        apart) and the parsed User-Agent. Memoised per pair: a phone asks for the same names
        with the same User-Agent at every boot, and matching every vendor's patterns and
        User-Agent rules cost more than the rest of a request together. Bounded: the oldest
        pair goes first (a storm's phones each ask a few names in a row)."""
        key = (path, user_agent)
        found = self._identities.get(key)
        if found is None:
            found = _identity(self.vendors, path, user_agent)
            if len(self._identities) >= IDENTITY_MEMO:
                del self._identities[next(iter(self._identities))]
            self._identities[key] = found
        return found

    async def admit_upload(self, request: PhoneRequest) -> PhoneResponse | int:
        """Before any byte of an upload is accepted: the refusal, or the most bytes that may
        come (the name's cap). The same admission as `handle`, so a banned source, another
        site, an unknown MAC or a foreign name is refused before the body is read."""
        admitted = self._admit(request)
        refusal: PhoneResponse | None = None
        if isinstance(admitted, PhoneResponse):
            refusal = admitted
        elif admitted.device is None:
            refusal = PhoneResponse(Outcome.NOT_ALLOWED, detail="uploads only to per-device names")
        elif admitted.match.spec.kind is not FileKind.UPLOAD:
            refusal = PhoneResponse(Outcome.NOT_ALLOWED, detail="this file cannot be uploaded")
        else:
            # The body comes next, to `handle`: it uses this admission instead of deciding
            # again (a digest nonce count may be used once, and one upload is one sighting).
            self._uploads_admitted[request] = (time.monotonic(), admitted)
            while len(self._uploads_admitted) > UPLOADS_PENDING:
                self._uploads_admitted.popitem(last=False)
            return self.uploads.cap(admitted.match.spec.max_upload)
        self.stats.record(request, refusal, None)  # `handle` never sees a refused upload
        return refusal

    def _upload_admission(self, request: PhoneRequest) -> _Admitted | None:
        """The admission `admit_upload` gave this very request (same source, path and
        headers) a moment ago, used once."""
        if request.body is None:
            return None
        found = self._uploads_admitted.pop(dataclasses.replace(request, body=None), None)
        if found is None or time.monotonic() - found[0] > UPLOAD_ADMISSION_S:
            return None
        return found[1]

    async def handle(self, request: PhoneRequest) -> PhoneResponse:
        """Answer one phone request (and count it)."""
        answer = self.respond(request)
        return answer if isinstance(answer, PhoneResponse) else await answer

    def respond(self, request: PhoneRequest) -> PhoneResponse | Awaitable[PhoneResponse]:
        """`handle`, at once when no I/O is needed: everything but uploads and stored uploads
        (the directory is in memory, rendering is CPU work)."""
        answer = self._decide(request)
        if isinstance(answer, PhoneResponse):
            self.stats.record(request, answer, answer.vendor)
            return answer
        return self._counted(request, answer)

    async def _counted(
        self, request: PhoneRequest, pending: Awaitable[PhoneResponse]
    ) -> PhoneResponse:
        answer = await pending
        self.stats.record(request, answer, answer.vendor)
        return answer

    def _decide(self, request: PhoneRequest) -> PhoneResponse | Awaitable[PhoneResponse]:
        admitted = self._upload_admission(request) or self._admit(request)
        if isinstance(admitted, PhoneResponse):
            return admitted
        match, device, agent = admitted.match, admitted.device, admitted.agent
        uploading = request.method in ("PUT", "POST")
        if device is None:
            if uploading:
                return PhoneResponse(Outcome.NOT_ALLOWED, detail="uploads only to per-device names")
            return self._shared(admitted.path, match, agent)
        if admitted.on_proven is not None and uploading and request.body is not None:
            admitted.on_proven()  # the body came from the source: its address is proven
        if match.spec.kind is FileKind.UPLOAD:
            return self._upload(request, admitted.path, match, device)
        if uploading:
            return PhoneResponse(Outcome.NOT_ALLOWED, detail="this file cannot be uploaded")
        if match.spec.kind is FileKind.PHONEBOOK:
            return self._phonebook(match)
        reported = agent.firmware if agent is not None and agent.firmware else device.firmware
        answer = self._render(match, device.model, device, reported)
        if admitted.on_proven is None or not answer.ok:
            return answer
        return dataclasses.replace(answer, on_proven=admitted.on_proven)  # not the cached one

    def _admit(self, request: PhoneRequest) -> PhoneResponse | _Admitted:
        """Identify the request and let the gate decide, once, whether it may have the file.

        Every "not for you" (unknown MAC, a known MAC under another vendor's name, another
        site, a ban) gets the gate's one answer for the source's site, so no answer tells a
        known MAC from an unknown one.
        """
        found = self._identify(request.path, request.user_agent)
        path, matches, served, agent = found.path, found.matches, found.served, found.agent
        if path is None:
            return PhoneResponse(Outcome.BAD_REQUEST, detail="invalid path")
        ban = self.gate.banned(request)
        if not found.per_mac:
            if ban is not None:
                return self.gate.refuse_banned(ban)
            if not matches:
                return _not_found("unknown file")
            return _Admitted(path, _prefer(matches, agent), None, agent)
        if not served:  # names we never serve: the same 404 for every MAC, before any lookup
            return _not_found("not served")
        mac = served[0].mac
        assert mac is not None
        device = self.directory.device_by_mac(mac)
        match = None
        if device is not None:
            vendor = device.model.vendor
            for candidate in served:
                if candidate.vendor.id == vendor:
                    match = candidate
                    break
        sites = self.directory.sites()
        site = self.gate.site_for(request.client_ip, sites)
        access = self.gate.admit(
            request,
            mac=mac,
            kind=match.spec.kind if match is not None else served[0].spec.kind,
            device=device if match is not None else None,
            site=site,
            ban=ban,
            agent=agent,
        )
        if device is None and access.unknown and access.site is not None:
            assert access.refusal is not None  # an unknown MAC is never served
            sighting = self._sighting(request, path, mac, agent, served)
            return self._remember_unknown(request, access.refusal, sighting)
        if access.refusal is not None:
            return access.refusal
        assert device is not None
        assert match is not None
        lock = (
            site.id
            if site is not None
            and site.lock_on_first_boot
            and site.id is not None
            and device.site_id is None
            and match.spec.kind is FileKind.DEVICE  # a boot file (no secret) never binds,
            and request.method == "GET"  # nor a HEAD, which takes no file away
            else None
        )

        def record() -> None:
            firmware = agent.firmware if agent else None
            # Built only when it tells something new: most of a storm repeats what is known.
            if not self.activity.current(
                device.id, request.client_ip, request.user_agent, firmware
            ):
                self.activity.seen(device.id, self._sighting(request, path, mac, agent, served))
            if lock is not None:
                self.activity.lock(device.id, lock)
                self.directory.note_lock(device.id, lock)

        if request.protocol == "tftp":
            # One forged UDP packet can claim any address: its sighting would steer resync
            # NOTIFYs there, and its lock would bind the device to the forger's site. Both
            # wait until the source answers a packet of ours (the TFTP frontend calls this).
            return _Admitted(path, match, device, agent, on_proven=record)
        record()
        return _Admitted(path, match, device, agent)

    def _remember_unknown(
        self, request: PhoneRequest, refusal: PhoneResponse, sighting: Sighting
    ) -> PhoneResponse:
        """Record an unknown MAC for the administrator (only from inside a site); over an
        unproven transport (TFTP) only once the source has answered a packet of ours."""
        if request.protocol != "tftp":
            self.activity.unknown(sighting)
            return refusal
        counted = refusal.on_proven

        def proven() -> None:
            if counted is not None:
                counted()
            self.activity.unknown(sighting)

        return dataclasses.replace(refusal, on_proven=proven)

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
        # Stored under its canonical (lower-case) name; the name's cap and the global ceiling
        # bound one upload, the device's quota all of them (see provisioning/uploads.py).
        name = self.uploads.canonical(path.rsplit("/", 1)[-1])
        if request.method in ("PUT", "POST"):
            body = request.body or b""
            limit = self.uploads.cap(match.spec.max_upload)
            if len(body) > limit:
                return PhoneResponse(Outcome.TOO_LARGE, detail=f"upload over {limit} bytes")
            try:
                if not await self.uploads.save(device.mac, name, body):
                    return PhoneResponse(Outcome.TOO_LARGE, detail="device upload quota reached")
            except UploadNotStored as exc:  # logged by the store; the phone may try again
                return PhoneResponse(Outcome.NO_SPACE, detail=str(exc))
            return PhoneResponse(Outcome.OK, content_type="text/plain")
        stored = await self.uploads.load(device.mac, name)
        if stored is None:
            return _not_found("nothing uploaded under this name")
        return PhoneResponse(
            Outcome.OK, body=stored, content_type=match.spec.content_type, etag=_etag(stored)
        )

    def _shared(self, path: str, match: FileMatch, agent: UserAgentInfo | None) -> PhoneResponse:
        kind = match.spec.kind
        if kind is FileKind.OPTIONAL:
            return _not_found("not served")
        if kind is FileKind.FIRMWARE:
            return self._firmware(path)
        model = None
        if match.family is not None:
            model = self.directory.model_for_family(match.vendor.id, match.family)
            if model is None:
                return _not_found(f"unknown {match.vendor.id} model {match.family}")
        return self._render(match, model, None, agent.firmware if agent else None)

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

    def _render(
        self,
        match: FileMatch,
        model: ModelInfo | None,
        device: PhoneDevice | None,
        reported: str | None = None,
    ) -> PhoneResponse:
        """A rendered file, from the render cache when the directory can vouch it is current."""
        spec, revision = match.spec, self.directory.revision()
        firmware = self._firmware_offer(model, reported)
        key = render_key(
            spec.kind,
            match.vendor,
            spec.template,
            revision,
            model,
            device,
            firmware,
            self.endpoints,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        inputs = RenderInputs(
            kind=spec.kind,
            vendor=match.vendor,
            template=spec.template,
            platform=self.directory.platform(),
            platform_revision=revision,
            model=model,
            device=device,
            firmware=firmware,
            endpoints=self.endpoints,
        )
        assert inputs.key() == key  # one key, whichever way it is built
        answer = self._render_now(match, inputs)
        self._cache[key] = answer
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return answer

    def _phonebook(self, match: FileMatch) -> PhoneResponse:
        """The vendor's phone book: rendered once per revision of the book (and of the
        settings), and only the newest kept."""
        book, slot = self.directory.phonebook(), (match.vendor.id, match.spec.template)
        key = render_key(
            FileKind.PHONEBOOK,
            match.vendor,
            match.spec.template,
            self.directory.revision(),
            None,
            None,
            ("", ""),
            self.endpoints,
            book,
        )
        kept = self._books.get(slot)
        if kept is not None and kept[0] == key:
            self.stats.cache_hits += 1
            return kept[1]
        self.stats.cache_misses += 1
        inputs = RenderInputs(
            kind=FileKind.PHONEBOOK,
            vendor=match.vendor,
            template=match.spec.template,
            platform=self.directory.platform(),
            platform_revision=self.directory.revision(),
            model=None,
            device=None,
            firmware=("", ""),
            endpoints=self.endpoints,
            phonebook=book,
        )
        answer = self._render_now(match, inputs)
        self._books[slot] = (key, answer)
        return answer

    def _render_now(self, match: FileMatch, inputs: RenderInputs) -> PhoneResponse:
        started = time.perf_counter()
        try:
            body = self.renderer.render(match.vendor.id, match.spec, inputs.context(self._open))
            self.stats.rendered(time.perf_counter() - started)
        except RenderError:
            log.exception("rendering %s for %s failed", match.spec.template, match.vendor.id)
            raise
        device = inputs.device
        return PhoneResponse(
            Outcome.OK,
            body=body,
            content_type=match.spec.content_type,
            etag=_etag(body),
            last_modified=device.updated_at if device is not None else None,
            vendor=match.vendor.id,
        )

    def _open(self, sealed: str) -> str:
        """Decrypt a stored secret (microseconds; the key never leaves memory)."""
        return self.secrets.decrypt(sealed)


@dataclass(frozen=True, slots=True)
class _Admitted:
    """A request the gate let through: the file it names, and the device for per-MAC names."""

    path: str
    match: FileMatch
    device: PhoneDevice | None
    agent: UserAgentInfo | None
    on_proven: Callable[[], None] | None = None  # what waits for the source's proof (TFTP)


@dataclass(frozen=True, slots=True)
class _Identity:
    """What a (path, User-Agent) pair names; `path` None when the path is unsafe."""

    path: str | None
    matches: list[FileMatch]
    per_mac: bool  # some match names a MAC
    served: list[FileMatch]  # the per-MAC matches we serve (not OPTIONAL names)
    agent: UserAgentInfo | None


def _identity(vendors: tuple[VendorSpec, ...], raw: str, user_agent: str | None) -> _Identity:
    path = safe_path(raw)
    if path is None:
        return _Identity(None, [], False, [], None)
    matches = match_path(vendors, path)
    per_mac = [m for m in matches if m.mac is not None]
    served = [m for m in per_mac if m.spec.kind is not FileKind.OPTIONAL]
    agent = parse_user_agent(vendors, user_agent) if matches else None
    return _Identity(path, matches, bool(per_mac), served, agent)


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
