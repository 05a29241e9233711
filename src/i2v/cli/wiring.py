"""The composition root: Settings -> concrete store, storage, signer, catalog, fetcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2v.api.auth import hash_key, new_key
from i2v.api.services import Services
from i2v.api.space import MB, DiskGuard
from i2v.delivery.poster import WebhookPoster
from i2v.delivery.retry import RetryPolicy
from i2v.delivery.secrets import WebhookSecrets
from i2v.delivery.sender import WebhookSender
from i2v.dialects.payload import WebhookPayload
from i2v.domain.catalog import Catalog, CatalogError, read_catalog, wrong_rate
from i2v.domain.errors import I2VError
from i2v.domain.settings import Settings
from i2v.engines import registry
from i2v.engines.base import Engine
from i2v.intake.fetch import Fetcher
from i2v.metrics import JobMetrics, Metrics
from i2v.metrics.queue import QueueDepth
from i2v.safety import create_checker
from i2v.storage.base import Storage
from i2v.storage.local import LocalStorage
from i2v.storage.s3 import S3Location, S3Storage
from i2v.storage.signing import UrlSigner, load_or_create_secret
from i2v.store import Store
from i2v.store.stats import Stats
from i2v.worker.loop import EngineFactory, Worker, WorkerConfig
from i2v.worker.sweeper import Sweeper

KEY_FILE = "api-key.txt"  # the key `i2v serve` made on first start, so it can show it again


def load_catalog(path: Path | None, gpus: tuple[int, ...] = ()) -> Catalog:
    """The catalog, with every route's engine and options checked now: a typo fails at
    start-up, not on a user's request. Engines are cheap to build (GPU engines load
    their weights on the first render), so building one is the check. `gpus`: check the
    routes as a worker started with `--gpus` runs them."""
    source = "built-in catalog" if path is None else str(path)
    catalog = read_catalog(path)
    for route in catalog:
        unknown = sorted(
            (route.inputs & registry.ENGINE_INPUTS) - registry.info(route.engine).takes
        )
        if unknown:
            raise CatalogError(
                f"{source}: route {route.path!r}: inputs: the {route.engine} engine does not "
                f"take {', '.join(unknown)}; remove it from inputs"
            )
        try:
            engine_factory(gpus)(route.engine, route.options).close()
            facts = registry.model_facts(route.engine, route.options)
        except I2VError as exc:
            raise CatalogError(f"{source}: route {route.path!r}: {exc.message}") from exc
        if facts is not None and facts.fps != route.fps:
            raise CatalogError(
                f"{source}: route {route.path!r}: fps: "
                + wrong_rate(facts.model, facts.fps, route.fps)
            )
        if facts is not None and "last_image" in route.inputs and not facts.last_image:
            raise CatalogError(
                f"{source}: route {route.path!r}: inputs: {facts.model} does not take a "
                "last frame (Wan2.2 I2V-A14B and Wan2.1 FLF2V do); remove last_image"
            )
    return catalog


def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store.open(settings.resolved_database_url, limits=settings.default_limits)


def build_services(settings: Settings, store: Store, metrics: Metrics | None = None) -> Services:
    """What the API needs; `metrics`: this process's (default: new ones), to which the
    queue depth and webhook outcomes are added."""
    metrics = metrics or Metrics()
    metrics.add(QueueDepth(Stats(store.database)))
    secret = (
        settings.url_secret.encode()
        if settings.url_secret
        else load_or_create_secret(settings.data_dir / "url-secret")
    )
    storage = build_storage(settings)
    signer = UrlSigner(secret, ttl_seconds=settings.url_ttl_seconds)
    fetcher = Fetcher(
        timeout_s=settings.fetch_timeout_seconds,
        max_bytes=settings.fetch_max_bytes,
        allow=settings.allow_fetch,
    )
    secrets = WebhookSecrets(secret)
    sender = WebhookSender(
        store.outbox,
        WebhookPoster(timeout_s=settings.webhook_timeout_seconds, allow=settings.allow_webhooks),
        secrets,
        WebhookPayload(signer, storage, settings.retention),
        policy=RetryPolicy(
            attempts=settings.webhook_attempts,
            first_wait_s=settings.webhook_retry_seconds,
            max_wait_s=settings.webhook_retry_max_seconds,
        ),
        timeout_s=settings.webhook_timeout_seconds,
        poll_s=settings.webhook_poll_seconds,
        on_outcome=lambda outcome: metrics.webhooks.labels(outcome).inc(),
    )
    return Services(
        settings=settings,
        store=store,
        storage=storage,
        signer=signer,
        catalog=load_catalog(settings.catalog),
        fetcher=fetcher,
        webhook_secrets=secrets,
        webhooks=sender,
        metrics=metrics,
        disk=disk_guard(settings),
    )


def disk_guard(settings: Settings) -> DiskGuard | None:
    """The media folder's free-space check; None on S3 or with `min_free_mb` 0."""
    if settings.storage_url or not settings.min_free_mb:
        return None
    return DiskGuard(settings.resolved_media_dir, settings.min_free_mb * MB)


def build_storage(settings: Settings) -> Storage:
    if not settings.storage_url:
        return LocalStorage(settings.resolved_media_dir)
    location = S3Location.parse(
        settings.storage_url,
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )
    return S3Storage(location)


def build_workers(
    settings: Settings,
    store: Store,
    storage: Storage,
    count: int,
    engines: frozenset[str] | None = None,
    metrics: Metrics | None = None,
    gpus: tuple[int, ...] = (),
) -> list[Worker]:
    """`count` workers for one process. They share one safety checker: its model is loaded
    once (ONNX Runtime sessions may be run from several threads). With `metrics`, they
    record their jobs there; with `gpus`, every GPU engine renders on those devices."""
    if count <= 0:
        return []
    observer = JobMetrics(metrics, store) if metrics is not None else None
    if observer is not None:
        observer.started(count)
    config = WorkerConfig(
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        poll_seconds=settings.poll_seconds,
        engines=engines,
        safety=create_checker(settings.safety_checker, threshold=settings.safety_threshold),
        observer=observer,
        sweeper=Sweeper(store, storage, settings.retention, every_s=settings.sweep_seconds),
        shared_gpus=bool(gpus),
    )
    return [Worker(store, storage, engine_factory(gpus), config) for _ in range(count)]


def engine_factory(gpus: tuple[int, ...] = ()) -> EngineFactory:
    """`registry.create`, giving `gpus` (`i2v worker --gpus`) to every GPU engine whose
    route does not name its own: one job then runs across all of those devices (an engine
    that cannot split a render, LTX, runs on the first of them, with its own options)."""
    if not gpus:
        return registry.create

    def create(name: str, options: dict[str, Any]) -> Engine:
        if registry.info(name).gpu and "gpus" not in options:
            options = {**options, "gpus": list(gpus)}
        return registry.create(name, options)

    return create


def settings_from(overrides: dict[str, object]) -> Settings:
    """I2V_* variables, then the flags that were given (a flag beats a variable)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def ensure_key(settings: Settings, store: Store) -> str | None:
    """The key to show on start-up: made (and kept in the data dir, mode 0600) when the
    server has no key at all, so a fresh install is usable and never open."""
    path = settings.data_dir / KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if store.keys.find(hash_key(key)) is not None:
            return key
    if settings.api_keys or store.keys.list():
        return None
    key = new_key()
    store.keys.add(hash_key(key), name="default", prefix=key[:8])
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
