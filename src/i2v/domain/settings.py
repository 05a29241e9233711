"""Settings: built once by the CLI (from flags and I2V_* variables) and passed down.

Library code never reads the environment; it receives a Settings object.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from i2v.domain.errors import ConfigError
from i2v.domain.limits import Limits
from i2v.domain.retention import Retention

DEFAULT_PORT = 8000
LEASE_SECONDS = 30.0  # a worker that misses heartbeats this long loses its job
HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.5  # worker poll fallback when no wake-up arrives
SYNC_TIMEOUT_SECONDS = 300.0  # WaveSpeed enable_sync_mode waits at most this long
MAX_BODY_BYTES = 32 * 1024 * 1024  # JSON bodies (base64 images fit: 4.7 MB -> 6.3 MB)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
UPLOAD_QUOTA_BYTES = 1024**3  # what one key's uploads may hold at once
FETCH_TIMEOUT_SECONDS = 20.0  # whole-request deadline for URLs fetched on a user's behalf
FETCH_MAX_BYTES = 16 * 1024 * 1024
WEBHOOK_TIMEOUT_SECONDS = 10.0  # a receiver must answer within this (RunComfy's figure)
WEBHOOK_ATTEMPTS = 10  # retries back off 4x from webhook_retry_seconds: ~1 day in all
WEBHOOK_RETRY_SECONDS = 5.0
WEBHOOK_RETRY_MAX_SECONDS = 6 * 3600.0
WEBHOOK_POLL_SECONDS = 0.5  # how often an API process looks for deliveries owed
RETENTION_HOURS = 168.0  # outputs and inputs kept 7 days after finishing (RunComfy's figure)
UPLOAD_RETENTION_HOURS = 24.0  # uploads no prediction used
SWEEP_SECONDS = 60.0  # a worker looks for expired objects at most this often
MIN_FREE_MB = 100  # submits are refused when the media folder's disk has less free


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="I2V_", extra="ignore")

    data_dir: Path = Path("i2v-data")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Base URL that clients reach us at; output URLs are built from it.
    # Empty: taken from each request's own URL.
    public_url: str = ""
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    database_url: str = ""  # empty: sqlite file in data_dir
    media_dir: Path | None = None  # empty: data_dir/media
    # Object storage: empty for the local media folder, or s3://bucket[/prefix] so that
    # workers on other machines share inputs and outputs with the API.
    storage_url: str = ""
    s3_endpoint: str = ""  # empty: AWS; else e.g. http://127.0.0.1:8333 (SeaweedFS, MinIO)
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: the S3 client's own environment (AWS_*, roles)
    s3_secret_access_key: str = ""
    catalog: Path | None = None  # empty: the built-in catalog
    workers: int = 1  # in-process workers started by `i2v serve`
    lease_seconds: float = LEASE_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    poll_seconds: float = POLL_SECONDS
    max_attempts: int = 3
    # WaveSpeed dialect: refuse inputs a route does not take (400) instead of ignoring
    # them and naming them in X-I2V-Ignored-Inputs, as the hosted API ignores them.
    strict_inputs: bool = False
    # Logs of `i2v serve` / `i2v worker`: "text" lines, or "json" (one object per line).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "info"
    access_log: bool = True  # uvicorn's line per request, in the same format
    sync_timeout_seconds: float = SYNC_TIMEOUT_SECONDS
    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # Bytes one key's uploads may hold at once (unused ones expire); 0: no quota.
    upload_quota_bytes: int = Field(default=UPLOAD_QUOTA_BYTES, ge=0)
    fetch_timeout_seconds: float = FETCH_TIMEOUT_SECONDS
    fetch_max_bytes: int = FETCH_MAX_BYTES
    # Hosts or networks that URL fetching may reach despite the SSRF guard (tests, LAN).
    allow_fetch: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The same for webhook URLs, kept apart: reading an image from a LAN host is not the
    # same grant as letting any key holder POST to it.
    allow_webhooks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Secret for signing media URLs; empty: generated once and kept in data_dir.
    url_secret: str = ""
    url_ttl_seconds: int = 0  # 0: signed media URLs never expire
    # Output safety check: "auto" (NudeNet if the `safety` extra is installed), "nudenet"
    # (required), or "off" for the deployment.
    safety_checker: str = "auto"
    safety_threshold: float = 0.45  # NudeNet score from which an exposed part counts
    webhook_timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS
    webhook_attempts: int = WEBHOOK_ATTEMPTS
    webhook_retry_seconds: float = WEBHOOK_RETRY_SECONDS
    webhook_retry_max_seconds: float = WEBHOOK_RETRY_MAX_SECONDS
    webhook_poll_seconds: float = WEBHOOK_POLL_SECONDS
    # Per-key limits, the server-wide defaults (0: unlimited); `i2v keys create --max-queued
    # ...` overrides them per key. They live in the database, so every API process agrees.
    max_queued: int = Field(default=0, ge=0)
    max_running: int = Field(default=0, ge=0)
    rate_per_minute: int = Field(default=0, ge=0)
    # Outputs and inputs are deleted this long after their prediction finished (fractions
    # allowed; 0 keeps them forever). An unfinished prediction's input is never removed.
    retention_hours: float = Field(default=RETENTION_HOURS, ge=0)
    upload_retention_hours: float = Field(default=UPLOAD_RETENTION_HOURS, gt=0)
    sweep_seconds: float = Field(default=SWEEP_SECONDS, gt=0)
    # Submits answer 507/503 when the media folder's disk has less free than this (0: off).
    min_free_mb: int = Field(default=MIN_FREE_MB, ge=0)

    @field_validator("api_keys", "allow_fetch", "allow_webhooks", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'i2v.db'}"

    @property
    def default_limits(self) -> Limits:
        """The per-key limits of a key that sets none of its own."""
        return Limits(
            max_queued=self.max_queued or None,
            max_running=self.max_running or None,
            rate_per_minute=self.rate_per_minute or None,
        )

    @property
    def retention(self) -> Retention:
        return Retention(hours=self.retention_hours, upload_hours=self.upload_retention_hours)

    def check_public_url(self) -> None:
        """`ConfigError` when the server would bind beyond loopback with no `public_url`.

        Media links are capabilities built on the base URL; without a public URL they are
        built from each request's Host header, which any client sets. On loopback that
        header comes from this machine (or a reverse proxy the operator runs); on an open
        interface it could point links at anyone's host. One setting makes every link right
        and, unlike a Host allowlist, leaves nothing to build from a header."""
        if self.public_url or _loopback(self.host):
            return
        raise ConfigError(
            f"public_url: required when serving on {self.host!r}, which is not a loopback"
            " address: media links are built from it, and without it from each request's"
            " Host header, which any client sets. Set --public-url or I2V_PUBLIC_URL to the"
            " URL clients reach this server at (e.g. https://i2v.example.com), or bind"
            " 127.0.0.1 behind a reverse proxy"
        )

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
