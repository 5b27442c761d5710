"""The security checks of the phone pipeline (DESIGN.md section 5), kept out of the resolver.

The resolver asks the gate, in order: is the source banned; do the User-Agent and the path
name the same MAC; may this source have this file under its site's policy (with digest
credentials or a client certificate where the site asks for them); does the User-Agent's model
belong to the device's model. Every refusal is cheap, logged once per cause, and counted
against the source by the enumeration guard, so a MAC walk is banned within the threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from provisiond.domain import policy
from provisiond.domain.identify import FileKind, UserAgentInfo
from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.provisioning.bans import Ban, EnumerationGuard
from provisiond.provisioning.digest import DigestAuth
from provisiond.provisioning.directory import PhoneDevice
from provisiond.storage.secrets import SecretBox

log = logging.getLogger(__name__)

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


class Gate:
    """Bans, digest, certificates, networks, first-boot locks and consistency checks."""

    def __init__(
        self, guard: EnumerationGuard, digest: DigestAuth, secrets: SecretBox, model_check: str
    ) -> None:
        self.guard = guard
        self.digest = digest
        self.secrets = secrets
        self.strict_model = model_check == "strict"

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

    def unknown_mac(self, request: PhoneRequest, site: policy.Site | None) -> PhoneResponse:
        """An unknown MAC: counted towards a ban; answered like a known one would be under digest.

        Under a digest site the answer is the same 401 challenge a known device gets, so a walk
        cannot tell which MACs exist.
        """
        self.guard.record(request.client_ip, "unknown_mac")
        if site is not None and site.policy == "digest" and request.protocol != "tftp":
            return self.challenge(stale=False)
        return PhoneResponse(Outcome.NOT_FOUND, detail="unknown device")

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
        site = policy.site_for(request.client_ip, sites)
        file_class = FILE_CLASS.get(kind, policy.FileClass.SHARED)
        digest_ok, stale = False, False
        if site is not None and site.policy == "digest" and file_class is policy.FileClass.DEVICE:
            digest_ok, stale = self._digest(request, device)
        if ban is not None and not digest_ok:
            return Access(self.refuse_banned(ban))
        proof = policy.Proof(request.protocol, digest_ok, request.client_cert_macs)
        verdict = policy.decide(
            file_class, site=site, mac=device.mac, proof=proof, locked_site_id=locked_site_id
        )
        if verdict is policy.Verdict.ALLOW:
            return Access(None, site)
        if verdict is policy.Verdict.NEED_DIGEST:
            return Access(self.challenge(stale=stale))
        return Access(self.suspicious(request, f"policy: {verdict.value}"))

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
