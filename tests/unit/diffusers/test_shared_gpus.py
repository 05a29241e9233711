"""`i2v worker --gpus`: every GPU engine renders on the same GPUs, so the worker keeps
at most one of them warm (a split engine holds a whole group of ranks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.storage.base import Storage
from i2v.store import Store
from i2v.worker.loop import Worker, WorkerConfig
from jobs import job_spec


class _Engine:
    """A stand-in engine that records whether it was closed."""

    pixel_format = "rgb24"

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def render(self, request: Any, on_progress: Any) -> Any:
        raise AssertionError("not rendered here")

    def close(self) -> None:
        self.closed = True


def _job(engine: str, **options: Any) -> Prediction:
    return Prediction(
        id=f"{engine}-{len(options)}",
        owner="o",
        model="m",
        engine=engine,
        status=Status.RUNNING,
        spec=job_spec(engine_options=options),
        input={},
        created_at=datetime.now(UTC),
    )


def _worker(shared_gpus: bool) -> tuple[Worker, list[_Engine]]:
    made: list[_Engine] = []

    def create(name: str, options: dict[str, Any]) -> Any:
        made.append(_Engine(name))
        return made[-1]

    config = WorkerConfig(1.0, 1.0, 1.0, shared_gpus=shared_gpus)
    return Worker(cast(Store, None), cast(Storage, None), create, config), made


def test_with_shared_gpus_one_gpu_engine_stays_warm() -> None:
    worker, made = _worker(shared_gpus=True)
    fast = worker._engine(_job("wan", steps=4))
    worker._engine(_job("fake"))  # not a GPU engine: stays warm beside them
    assert worker._engine(_job("wan", steps=4)) is fast  # the same route: still warm
    worker._engine(_job("wan", steps=40))  # another route on the same GPUs
    assert [engine.closed for engine in made] == [True, False, False]
    worker._engine(_job("ltx"))
    assert [engine.closed for engine in made] == [True, False, True, False]


def test_without_shared_gpus_every_route_stays_warm() -> None:
    worker, made = _worker(shared_gpus=False)
    worker._engine(_job("wan", steps=4))
    worker._engine(_job("wan", steps=40))
    worker._engine(_job("ltx"))
    assert not any(engine.closed for engine in made)
