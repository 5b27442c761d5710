"""The domain's error tree. Every refusal the admin side can give is one of these.

    DomainError                 base: code, field, detail; never raised bare
    ├── InvalidInput            a value is malformed (422)
    ├── NotFound                an id/number that does not exist (404)
    ├── Conflict                the request clashes with current state (409)
    │   └── LicenceRefused      a licence module is exhausted or absent (409, names the module)
    └── Forbidden               the caller may not do this (403)

Frontends map them to their wire format (HTTP JSON, CLI message and exit code); nothing in
this module knows about HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused request: `code` is a stable machine name, `field` the input that caused it."""

    code = "error"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """A value is malformed or out of range."""

    code = "invalid"


class NotFound(DomainError):
    """The named object does not exist."""

    code = "not_found"


class Conflict(DomainError):
    """The request contradicts the current state (duplicate, rule violation)."""

    code = "conflict"


class LicenceRefused(Conflict):
    """Enabling a feature needs a licence module that is exhausted or absent."""

    code = "licence_refused"

    def __init__(self, module: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.module = module


class Forbidden(DomainError):
    """The caller is not allowed to do this."""

    code = "forbidden"
