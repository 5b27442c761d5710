"""The security checks of the phone pipeline (DESIGN.md section 5), kept out of the resolver.

The resolver asks the gate, in order: is the source banned; do the User-Agent and the path
name the same MAC; may this source have this file under its site's policy (with digest
credentials or a client certificate where the site asks for them); does the User-Agent's model
belong to the device's model. Every refusal is cheap, logged once per cause, and counted
against the source by the enumeration guard, so a MAC walk is banned within the threshold.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import netaddr

from provisiond.domain import policy
from provisiond.domain.identify import FileKind, UserAgentInfo
from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.provisioning.bans import Ban, EnumerationGuard
from provisiond.provisioning.digest import DigestAuth
from provisiond.provisioning.directory import PhoneDevice
from provisiond.storage.secrets import SecretBox

log = logging.getLogger(__name__)

SITE_MEMO = 100_000  # source addresses whose site is remembered

FILE_CLASS = {
    FileKind.DEVICE: policy.FileClass.DEVICE,
    FileKind.UPLOAD: policy.FileClass.DEVICE,
    FileKind.DEVICE_BOOT: policy.FileClass.BOOT,
}


@dataclass(frozen=True, slots=True)
class Access:
    """The gate's answer for a per-device request: a refusal, or the site to serve under."""

    refusal: PhoneResponse | None
    site: policy.Site | None = None


def _inside(ip: str, network: netaddr.IPNetwork) -> bool:
    try:
        return netaddr.IPAddress(ip) in network
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


class WalkMemory:
    """Which MACs each source asked for in vain, recently: a phone only ever asks for its own.

    A source that missed on another MAC within the window is walking: it gets no file with a
    secret (boot or device) unless it proves itself (digest or certificate), even before the
    ban. So a walker's first lucky hit on a known MAC yields nothing. Bounded (LRU).
    """

    def __init__(self, window_s: float, max_sources: int = 100_000) -> None:
        self._window = window_s
        self._max = max_sources
        self._missed: OrderedDict[str, tuple[float, str, str | None]] = OrderedDict()

    def missed(self, ip: str, mac: str, now: float) -> None:
        """`ip` asked for the unknown `mac`."""
        entry = self._missed.pop(ip, None)
        if entry is None or now - entry[0] > self._window:
            self._missed[ip] = (now, mac, None)
        else:
            first, second = entry[1], entry[2]
            self._missed[ip] = (now, first, second or (mac if mac != first else None))
        while len(self._missed) > self._max:
            self._missed.popitem(last=False)

    def forget(self, target: str) -> None:
        """Forget an address or every address of a network (when an admin lifts its ban)."""
        try:
            network = netaddr.IPNetwork(target)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self._missed.pop(target, None)
            return
        for ip in [ip for ip in self._missed if _inside(ip, network)]:
            del self._missed[ip]

    def walked(self, ip: str, mac: str, now: float) -> bool:
        """Did `ip` recently ask for a MAC other than `mac`?"""
        entry = self._missed.get(ip)
        if entry is None or now - entry[0] > self._window:
            return False
        return entry[1] != mac or entry[2] is not None


class Gate:
    """Bans, digest, certificates, networks, first-boot locks and consistency checks."""

    def __init__(
        self,
        guard: EnumerationGuard,
        digest: DigestAuth,
        secrets: SecretBox,
        model_check: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.digest = digest
        self.secrets = secrets
        self.strict_model = model_check == "strict"
        self.walks = WalkMemory(guard.config.window_s)
        guard.lift_hooks.append(self.walks.forget)
        self._clock = clock
        self._sites_seen: tuple[policy.Site, ...] | None = None
        self._site_of: dict[str, policy.Site | None] = {}

    def site_for(self, ip: str, sites: tuple[policy.Site, ...]) -> policy.Site | None:
        """`policy.site_for`, memoised per address for the current set of sites (an IPSet
        membership test costs microseconds; a boot storm asks it for every request)."""
        if sites is not self._sites_seen:
            self._sites_seen = sites
            self._site_of.clear()
        try:
            return self._site_of[ip]
        except KeyError:
            pass
        site = policy.site_for(ip, sites)
        if len(self._site_of) >= SITE_MEMO:
            self._site_of.clear()
        self._site_of[ip] = site
        return site

    def banned(self, request: PhoneRequest) -> Ban | None:
        """The ban covering the source, if any (a dictionary lookup)."""
        return self.guard.banned(request.client_ip)

    def refuse_banned(self, ban: Ban) -> PhoneResponse:
        """The cheap answer to a banned source."""
        self.guard.note_refused(ban)
        return PhoneResponse(Outcome.FORBIDDEN, detail="banned")

    def suspicious(self, request: PhoneRequest, why: str) -> PhoneResponse:
        """Refuse, and count the attempt against the source like a failed authentication."""
        log.warning("refused %s from %s: %s", request.path, request.client_ip, why)
        self.guard.record(request.client_ip, "auth_failure")
        return PhoneResponse(Outcome.FORBIDDEN, detail=why)

    def unknown_mac(
        self, request: PhoneRequest, mac: str, site: policy.Site | None
    ) -> PhoneResponse:
        """An unknown MAC: counted towards a ban, and answered exactly as a known device would
        be answered without proof, so a walk cannot tell which MACs exist: 403 outside every
        site, a 401 challenge under `digest` (403 over TFTP, which cannot authenticate), 403
        under `certificate`; only an `open` site, which serves known devices, answers 404.
        """
        self.guard.record(request.client_ip, "unknown_mac")
        self.walks.missed(request.client_ip, mac, self._clock())
        if site is None:
            return PhoneResponse(Outcome.FORBIDDEN, detail="outside every site")
        if site.policy == "open":
            return PhoneResponse(Outcome.NOT_FOUND, detail="unknown device")
        return self._refusal(request, site, "unknown device")

    def _refusal(self, request: PhoneRequest, site: policy.Site | None, why: str) -> PhoneResponse:
        """The answer to a request without valid proof: a challenge where digest applies."""
        if site is not None and site.policy == "digest" and request.protocol != "tftp":
            return self.challenge(stale=False)
        return PhoneResponse(Outcome.FORBIDDEN, detail=why)

    def banned_answer(
        self, request: PhoneRequest, ban: Ban, sites: tuple[policy.Site, ...]
    ) -> PhoneResponse:
        """A banned source asking for a per-device file without credentials.

        Inside a digest site it gets a challenge (and nothing else), so a phone behind a banned
        NAT can authenticate from scratch; everywhere else a bare 403.
        """
        self.guard.note_refused(ban)
        return self._refusal(request, self.site_for(request.client_ip, sites), "banned")

    def challenge(self, *, stale: bool) -> PhoneResponse:
        """401 with one WWW-Authenticate challenge per algorithm."""
        headers = tuple(("WWW-Authenticate", c) for c in self.digest.challenges(stale=stale))
        return PhoneResponse(Outcome.UNAUTHORIZED, detail="credentials needed", headers=headers)

    def check(
        self,
        request: PhoneRequest,
        kind: FileKind,
        device: PhoneDevice,
        sites: tuple[policy.Site, ...],
        ban: Ban | None,
        locked_site_id: int | None,
    ) -> Access:
        """May this request have this per-device file of a known device?"""
        site = self.site_for(request.client_ip, sites)
        file_class = FILE_CLASS.get(kind, policy.FileClass.SHARED)
        digest_ok, stale = False, False
        if site is not None and site.policy == "digest" and file_class is policy.FileClass.DEVICE:
            digest_ok, stale = self._digest(request, device)
        if ban is not None and not digest_ok:
            return Access(self.refuse_banned(ban))
        proven = digest_ok or device.mac in request.client_cert_macs
        if (
            file_class is not policy.FileClass.SHARED
            and not proven
            and self.walks.walked(request.client_ip, device.mac, self._clock())
        ):
            self.suspicious(request, "source asked for other phones' MACs")
            return Access(self._refusal(request, site, "walking"))
        proof = policy.Proof(request.protocol, digest_ok, request.client_cert_macs)
        verdict = policy.decide(
            file_class, site=site, mac=device.mac, proof=proof, locked_site_id=locked_site_id
        )
        if verdict is policy.Verdict.ALLOW:
            return Access(None, site)
        if verdict is policy.Verdict.NEED_DIGEST:
            return Access(self.challenge(stale=stale))
        self.suspicious(request, f"policy: {verdict.value}")
        return Access(self._refusal(request, site, verdict.value))

    def _digest(self, request: PhoneRequest, device: PhoneDevice) -> tuple[bool, bool]:
        sealed = device.provisioning_password_sealed

        def password_for(username: str) -> str | None:
            # Only the requested device's own credentials open its files.
            if sealed is None or username.lower() != device.mac:
                return None
            return self.secrets.decrypt(sealed)

        result = self.digest.verify(
            request.method,
            request.header("authorization"),
            password_for,
            uri=request.target or "/" + request.path,
        )
        if result.failed:
            self.guard.record(request.client_ip, "auth_failure")
        return result.ok, result.stale

    def model_refusal(
        self, request: PhoneRequest, agent: UserAgentInfo | None, device: PhoneDevice
    ) -> PhoneResponse | None:
        """The User-Agent's vendor and model must be the device's (strict) or are logged (warn)."""
        if agent is None:
            return None
        model = device.model
        same_vendor = agent.vendor.id == model.vendor
        if same_vendor and (
            agent.model is None
            or policy.model_matches(agent.model, name=model.name, family=model.family)
        ):
            return None
        why = f"User-Agent says {agent.vendor.id} {agent.model}, device is {model.id}"
        if self.strict_model:
            return self.suspicious(request, why)
        log.warning("%s from %s: %s (model_check=warn)", request.path, request.client_ip, why)
        return None
