"""One exception hierarchy for the whole appliance.

Anything raised to an HTTP handler that is an ``ApplianceError`` becomes a DHIS2
WebMessage with the error's status; anything else is a bug and is logged, but the
client still gets a WebMessage (500) and never a traceback.
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""

    http_status = 500

    def __init__(self, message: str, *, error_code: str | None = None,
                 response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.response = response


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or has a bad value."""


class StoreError(ApplianceError):
    """The database could not do what was asked."""


class BadRequest(ApplianceError):
    http_status = 400


class Unauthorized(ApplianceError):
    http_status = 401


class Forbidden(ApplianceError):
    http_status = 403


class NotFound(ApplianceError):
    http_status = 404


class Conflict(ApplianceError):
    http_status = 409


class NotAcceptable(ApplianceError):
    """The client does not accept what the route answers (an event stream)."""

    http_status = 406


class PayloadTooLarge(ApplianceError):
    http_status = 413


class UnsupportedMediaType(ApplianceError):
    http_status = 415


class TooManyRequests(ApplianceError):
    http_status = 429


class SyncError(ApplianceError):
    """Talking to national failed; the message says why in words a person can act on."""


class LinkDown(SyncError):
    """National could not be reached at all."""


class NationalRejected(SyncError):
    """National answered, but refused (auth, HTML error page, bad JSON...)."""


class FleetError(ApplianceError):
    """The fleet service refused a request."""


class ServiceUnavailable(FleetError):
    """The fleet service does not offer this (e.g. no ACME CA configured)."""

    http_status = 503


class CertificateError(ApplianceError):
    """A certificate, key or CSR that will not be used: malformed, for another name or key,
    or expired. Whatever was installed before stays in place."""

    http_status = 400


class AcmeError(FleetError):
    """National could not get a hub's certificate: the ACME CA or the DNS update failed."""

    http_status = 502


class UpdateError(ApplianceError):
    """A software update step failed on the hub (RAUC refused or failed, a reboot command
    failed); the message is RAUC's or the command's reason, for the fleet's dashboard."""
