"""Per-key limits: requests per minute, and active holds, so no client can squat a diary."""

from __future__ import annotations

import contextvars
import math

from app.domain.principal import Principal
from app.errors import RateLimited, TooManyHolds
from app.store.limits import Admission, LimitStore

# What the current request was admitted with, for its X-RateLimit-* headers.
admission: contextvars.ContextVar[Admission | None] = contextvars.ContextVar(
    "admission", default=None
)


class Limits:
    def __init__(self, store: LimitStore) -> None:
        self.store = store

    @property
    def per_minute(self) -> int:
        return self.store.per_minute

    async def admit(self, principal: Principal, new_hold_id: str | None = None) -> None:
        """Count this request against the key's rate; with `new_hold_id`, also take a place
        among the key's active holds. Refusals raise (429)."""
        admitted = await self.store.admit(principal.key_id, new_hold_id)
        admission.set(admitted)
        if admitted.verdict == 0:
            retry_after = str(max(1, math.ceil(admitted.retry_after_ms / 1000)))
            raise RateLimited(
                f"This API key may make {self.per_minute} requests a minute; retry later.",
                headers={"Retry-After": retry_after},
            )
        if admitted.verdict == -1:
            raise TooManyHolds(
                f"This API key already has {self.store.max_active_holds} active holds; "
                "confirm or release one first.",
                headers={"Retry-After": "60"},
            )

    async def count(self, principal: Principal) -> None:
        """Count a request that failed before it was admitted, without refusing it."""
        if admission.get() is None:
            admission.set(await self.store.admit(principal.key_id))

    async def extend_hold(self, api_key_id: str, hold_id: str, expires_ms: int) -> None:
        if api_key_id:
            await self.store.extend(api_key_id, hold_id, expires_ms)

    async def free_hold(self, api_key_id: str, hold_id: str) -> None:
        if api_key_id:
            await self.store.free(api_key_id, hold_id)
