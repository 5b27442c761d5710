"""The security checks of the phone pipeline (DESIGN.md section 5), kept out of the resolver.

The resolver asks the gate, in order: is the source banned; do the User-Agent and the path
name the same MAC; may this source have this file under its site's policy (with digest
credentials or a client certificate where the site asks for them); does the User-Agent's model
belong to the device's model. Every refusal is cheap, logged once per cause, and counted
against the source by the enumeration guard, so a MAC walk is banned within the threshold.
"""

from __future__ import annotations

import dataclasses
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
    # No secret, but company data: admitted exactly like the device's own file (issue 16).
    FileKind.PHONEBOOK: policy.FileClass.DEVICE,
    FileKind.DEVICE_BOOT: policy.FileClass.BOOT,
}


@dataclass(frozen=True, slots=True)
class Access:
    """The gate's answer for a per-device request: a refusal, or the site to serve under.

    `unknown` marks a refusal because no device of this vendor has the MAC (the resolver
    records the sighting for the administrator).
    """

    refusal: PhoneResponse | None
    site: policy.Site | None = None
    unknown: bool = False


def _inside(ip: str, network: netaddr.IPNetwork) -> bool:
    try:
        return netaddr.IPAddress(ip) in network
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


class WalkMemory:
    """Which MACs each source asked for in vain, recently: a phone only ever asks for its own.

    A source that missed on another MAC within the window is walking: it gets no file with a
    secret (boot or device) unless it proves itself (digest, certificate, or a User-Agent
    naming the MAC it asks for), even before the ban. So a walker's first lucky hit on a known
    MAC yields nothing. A miss over TFTP whose source never answered us (one forged UDP packet
    can claim any address) marks the source for TFTP only: a forger can then delay a TFTP
    phone at that address for one window, never ban it or touch its HTTP. Bounded (LRU).
    """

    def __init__(self, window_s: float, max_sources: int = 100_000) -> None:
        self._window = window_s
        self._max = max_sources
        # ip -> (last miss, first MAC, a second MAC or None, any miss proven)
        self._missed: OrderedDict[str, tuple[float, str, str | None, bool]] = OrderedDict()

    def missed(self, ip: str, mac: str, now: float, *, proven: bool = True) -> None:
        """`ip` asked for `mac`, which it may not have (`proven`: the source is real)."""
        entry = self._missed.pop(ip, None)
        if entry is None or now - entry[0] > self._window:
            self._missed[ip] = (now, mac, None, proven)
        else:
            _, first, second, was_proven = entry
            second = second or (mac if mac != first else None)
            self._missed[ip] = (now, first, second, was_proven or proven)
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

    def walked(self, ip: str, mac: str, now: float, *, tftp: bool = False) -> bool:
        """Did `ip` recently ask for a MAC other than `mac`? Unproven misses count for a TFTP
        request only."""
        entry = self._missed.get(ip)
        if entry is None or now - entry[0] > self._window or not (entry[3] or tftp):
            return False
        return entry[1] != mac or entry[2] is not None


class MissMemo:
    """Which (source, MAC) misses were counted within the window, so that the ban counts
    distinct MACs: fifty phones behind one NAT, a few of them new and each retrying its own
    name, stay far below a threshold that a walk over other MACs reaches. Bounded (LRU)."""

    def __init__(self, window_s: float, max_entries: int = 200_000) -> None:
        self._window = window_s
        self._max = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first(self, ip: str, mac: str, now: float) -> bool:
        """Whether this is the first miss of `ip` on `mac` within the window (and note it)."""
        key = (ip, mac)
        last = self._seen.pop(key, None)
        self._seen[key] = now if last is None or now - last > self._window else last
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return last is None or now - last > self._window


class QuietLog:
    """At most one line per cause every `interval_s`, with a count of the lines left out.

    A refusal must cost the same whatever its cause (a line written for a known device's
    refusal and none for an unknown MAC's was a 40 us timing oracle), and a client repeating
    one refused name must not be able to fill the disk with log lines.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def __call__(self, level: int, cause: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(cause)
        if last is not None and now - last < self._interval_s:
            self._left_out[cause] = self._left_out.get(cause, 0) + 1
            return
        self._last[cause] = now
        left_out = self._left_out.pop(cause, 0)
        if left_out:
            message += f" ({left_out} more like it in the last {now - (last or now):.0f} s)"
        self._logger.log(level, message, *args)


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
        self._misses = MissMemo(guard.config.window_s)
        guard.lift_hooks.append(self.walks.forget)
        self._clock = clock
        self._sites_seen: tuple[policy.Site, ...] | None = None
        self._site_of: dict[str, policy.Site | None] = {}
        # (User-Agent vendor, model, catalogue model) -> whether they agree: a storm's phones
        # are a handful of models, and comparing the spellings costs microseconds each time.
        self._same_model: dict[tuple[str, str | None, str], bool] = {}
        self._log = QuietLog(log)

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
        self._log(
            logging.WARNING,
            "suspicious",
            "refused %s from %s: %s",
            request.path,
            request.client_ip,
            why,
        )
        self.guard.record(request.client_ip, "auth_failure")
        return PhoneResponse(Outcome.FORBIDDEN, detail=why)

    def admit(
        self,
        request: PhoneRequest,
        *,
        mac: str,
        kind: FileKind,
        device: PhoneDevice | None,
        site: policy.Site | None,
        ban: Ban | None,
        agent: UserAgentInfo | None,
    ) -> Access:
        """The one decision on a per-MAC request: may this source have this file?

        `device` is None for an unknown MAC and for a known MAC under another vendor's file
        name: both are answered and counted alike. A device of another site gets the same
        answer too. A ban is lifted only by valid digest credentials inside a digest site (a
        phone behind a banned NAT logs in), never by the mere presence of a header.
        """
        now = self._clock()
        if agent is not None and agent.mac is not None and agent.mac != mac:
            why = f"User-Agent MAC {agent.mac} differs from path"
            self.suspicious(request, why)
            return Access(self.not_for_you(request, site), site)
        file_class = FILE_CLASS.get(kind, policy.FileClass.SHARED)
        digest_ok, stale, checked = False, False, False
        if (
            device is not None
            and site is not None
            and site.policy == "digest"
            and file_class is not policy.FileClass.SHARED
            and device.site_id in (None, site.id)
        ):
            digest_ok, stale = self._digest(request, device)
            checked = True
        if ban is not None and not digest_ok:
            self.guard.note_refused(ban)
            return Access(self.not_for_you(request, site), site)
        if device is None:
            refusal = self._miss(request, mac, site, agent, now, checked=checked)
            return Access(refusal, site, unknown=True)
        proof = policy.Proof(request.protocol, digest_ok, request.client_cert_macs)
        verdict = policy.decide(
            file_class, site=site, mac=mac, proof=proof, device_site_id=device.site_id
        )
        if verdict is policy.Verdict.NEED_DIGEST:
            return Access(self.challenge(stale=stale), site)
        if verdict is not policy.Verdict.ALLOW:
            # Another site's device, outside every site, no certificate, the wrong transport:
            # answered and counted exactly as an unknown MAC, so no counter tells them apart.
            self._log(
                logging.INFO,
                verdict.value,
                "refused %s to %s: %s",
                mac,
                request.client_ip,
                verdict.value,
            )
            return Access(self._miss(request, mac, site, agent, now, checked=checked), site)
        proven = digest_ok or mac in request.client_cert_macs
        self_named = agent is not None and agent.mac == mac
        if (
            file_class is not policy.FileClass.SHARED
            and not (proven or self_named)
            and self.walks.walked(request.client_ip, mac, now, tftp=request.protocol == "tftp")
        ):
            # Its misses were counted already; refusing its hits is the point, not counting.
            self._log(
                logging.WARNING,
                "walk",
                "refused %s to %s: it asked for other MACs",
                mac,
                request.client_ip,
            )
            return Access(self.not_for_you(request, site), site)
        if self.model_mismatch(request, agent, device):
            return Access(self._miss(request, mac, site, agent, now, checked=checked), site)
        return Access(None, site)

    def not_for_you(self, request: PhoneRequest, site: policy.Site | None) -> PhoneResponse:
        """The one answer to "this per-device file is not for you", whatever the reason, as a
        known device is answered without proof: 404 in an `open` site (which serves known
        devices to anyone inside), the digest challenge in a `digest` site (403 over TFTP,
        which cannot authenticate), 403 under `certificate` and outside every site."""
        if site is not None and site.policy == "open":
            return PhoneResponse(Outcome.NOT_FOUND, detail="not for you")
        if site is not None and site.policy == "digest" and request.protocol != "tftp":
            return self.challenge(stale=False)
        return PhoneResponse(Outcome.FORBIDDEN, detail="not for you")

    def _miss(
        self,
        request: PhoneRequest,
        mac: str,
        site: policy.Site | None,
        agent: UserAgentInfo | None,
        now: float,
        *,
        checked: bool,
    ) -> PhoneResponse:
        """A MAC this source may not have, known or not: the site's one answer, and one count.

        In a `digest` site the answer is the challenge every phone gets before it logs in, so
        it counts nothing (a NAT'd office of new phones must not be banned for asking), except
        an `Authorization` that did not check out: a failed authentication, known MAC or not
        (`checked`: the device's own verification already counted it). Everywhere else a miss
        counts once per MAC and window (a phone retrying its own name is one miss), and is
        remembered as a walk unless the User-Agent names that very MAC (a new phone asking
        for itself). Over TFTP, whose source address one forged packet can claim, the count
        waits for proof of address.
        """
        answer = self.not_for_you(request, site)
        ip = request.client_ip
        if answer.outcome is Outcome.UNAUTHORIZED:
            if not checked and request.header("authorization") is not None:
                self.guard.record(ip, "auth_failure")
            return answer
        self_named = agent is not None and agent.mac == mac

        def count() -> None:
            if self._misses.first(ip, mac, now):
                self.guard.record(ip, "unknown_mac")
            if not self_named:
                self.walks.missed(ip, mac, now)

        if request.protocol == "tftp":
            self.walks.missed(ip, mac, now, proven=False)
            return dataclasses.replace(answer, on_proven=count)
        count()
        return answer

    def challenge(self, *, stale: bool) -> PhoneResponse:
        """401 with one WWW-Authenticate challenge per algorithm."""
        headers = tuple(("WWW-Authenticate", c) for c in self.digest.challenges(stale=stale))
        return PhoneResponse(Outcome.UNAUTHORIZED, detail="credentials needed", headers=headers)

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

    def model_mismatch(
        self, request: PhoneRequest, agent: UserAgentInfo | None, device: PhoneDevice
    ) -> bool:
        """Whether to refuse: the User-Agent's vendor and model must be the device's (strict),
        or a mismatch is only logged (warn)."""
        if agent is None:
            return False
        model = device.model
        key = (agent.vendor.id, agent.model, model.id)
        same = self._same_model.get(key)
        if same is None:
            same = agent.vendor.id == model.vendor and (
                agent.model is None
                or policy.model_matches(agent.model, name=model.name, family=model.family)
            )
            if len(self._same_model) >= SITE_MEMO:
                self._same_model.clear()
            self._same_model[key] = same
        if same:
            return False
        why = f"User-Agent says {agent.vendor.id} {agent.model}, device is {model.id}"
        if self.strict_model:
            self._log(
                logging.WARNING,
                "model",
                "refused %s from %s: %s",
                request.path,
                request.client_ip,
                why,
            )
            return True
        self._log(
            logging.WARNING,
            "model-warn",
            "%s from %s: %s (model_check=warn)",
            request.path,
            request.client_ip,
            why,
        )
        return False
