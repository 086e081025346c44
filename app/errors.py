"""Domain errors. Each names its API error code, HTTP status and, where it helps, the field."""

from __future__ import annotations


class HoldsError(Exception):
    """Base class; the error middleware turns any of these into the error envelope."""

    status = 400
    code = "invalid_request"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class InvalidRequest(HoldsError):
    status, code = 400, "invalid_request"


class ResourceMissing(HoldsError):
    status, code = 400, "resource_missing"


class SlotNotOffered(HoldsError):
    status, code = 400, "slot_not_offered"


class Unauthorized(HoldsError):
    status, code = 401, "unauthorized"


class InsufficientScope(HoldsError):
    status, code = 403, "insufficient_scope"


class NotFound(HoldsError):
    status, code = 404, "not_found"


class HoldNotFound(HoldsError):
    status, code = 404, "hold_not_found"


class HoldExpired(HoldsError):
    status, code = 404, "hold_expired"


class HoldReleased(HoldsError):
    status, code = 404, "hold_released"


class SlotUnavailable(HoldsError):
    status, code = 409, "slot_unavailable"


class HoldConfirmed(HoldsError):
    status, code = 409, "hold_confirmed"


class HoldExtensionLimit(HoldsError):
    status, code = 409, "hold_extension_limit"


class HoldAlreadyConfirmed(HoldsError):
    status, code = 409, "hold_already_confirmed"


class Unavailable(HoldsError):
    status, code = 503, "unavailable"


class CatalogError(Exception):
    """A catalog file that cannot be loaded; the message names the entry and field."""


class RateLimited(HoldsError):
    status, code = 429, "rate_limited"


class TooManyHolds(HoldsError):
    status, code = 429, "too_many_holds"


class TooManyStreams(HoldsError):
    status, code = 429, "too_many_streams"


class IdempotencyKeyReused(HoldsError):
    status, code = 409, "idempotency_key_reused"


class IdempotencyKeyInUse(HoldsError):
    status, code = 409, "idempotency_key_in_use"
