"""Service settings, read from `HOLDS_*` environment variables with laptop-friendly defaults."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="HOLDS_", extra="ignore")

    base_path: str = "/v1"
    # Empty means: start an embedded redis-server under data_dir.
    redis_url: str = ""
    queue_redis_url: str = ""
    database_url: str = ""
    data_dir: Path = Path(".holds")
    hold_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    hold_retention_seconds: int = Field(default=86_400, ge=60)
    # An extended hold never expires later than this after it was created.
    hold_max_lifetime_seconds: int = Field(default=1800, ge=1, le=86_400)
    default_timezone: str = "Europe/London"
    rate_limit_per_minute: int = Field(default=600, ge=1)
    max_active_holds_per_key: int = Field(default=50, ge=1)
    # How long an API process trusts its in-memory copy of keys and catalog.
    cache_seconds: float = Field(default=2.0, gt=0, le=5.0)
    log_level: str = "INFO"
    # Where `holds worker` serves its Prometheus metrics; 0 turns that off.
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    # Status streams (GET /holds/{id}/events): how often an API process reads the events of
    # the hash tags it streams, the heartbeat comment's interval, and the most streams open at
    # once per API key, or per hold for a client_secret, in one API process.
    stream_poll_seconds: float = Field(default=0.2, gt=0, le=1.0)
    stream_ping_seconds: float = Field(default=15.0, gt=0, le=15.0)
    streams_per_key: int = Field(default=100, ge=1)
    streams_per_hold: int = Field(default=5, ge=1)
    # Browser origins allowed to call the API (comma-separated); empty means none (CORS closed).
    cors_origins: str = ""
    # Webhooks: private, loopback and link-local targets only for tests and single-host setups.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    webhook_max_in_flight_per_endpoint: int = Field(default=16, ge=1, le=100)
    # Retries go on for at least 24 hours; an endpoint failing this long is disabled.
    webhook_retry_for_seconds: int = Field(default=26 * 3600, ge=1)
    webhook_disable_after_seconds: int = Field(default=3 * 86_400, ge=1)
    event_retention_days: int = Field(default=8, ge=7)
    # On a Redis Cluster, how long a confirm waits for a replica of its master to have it
    # (WAIT 1 <ms>) before answering anyway; 0: confirms do not wait.
    confirm_replica_timeout_ms: int = Field(default=200, ge=0, le=2000)
    # Fault injection, for the fault-tolerance tests only.
    fault_exit_after_confirm_commit: bool = False
    fault_persist_delay_seconds: float = Field(default=0.0, ge=0)

    @field_validator("base_path")
    @classmethod
    def _normalise_base_path(cls, value: str) -> str:
        value = "/" + value.strip("/")
        return "" if value == "/" else value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def cors_origin_list(self) -> frozenset[str]:
        return frozenset(
            origin.strip() for origin in self.cors_origins.split(",") if origin.strip()
        )

    @property
    def effective_queue_redis_url(self) -> str:
        return self.queue_redis_url or self.redis_url

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'holds.sqlite3').resolve()}"
