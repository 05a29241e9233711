"""Many claimers on one SQLite file: no job claimed twice, none lost, no `database is locked`."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store
from jobs import job_spec

Make = Callable[..., Prediction]
JOBS = 60


def _drain(store: Store, worker_id: str) -> list[str]:
    """Claim and finish jobs until the queue is empty."""
    ids = []
    while (job := store.queue.claim(worker_id, lease_seconds=60)) is not None:
        store.queue.heartbeat(job.id, attempt=job.attempt, worker_id=worker_id, lease_seconds=60)
        store.queue.succeed(
            job.id,
            attempt=job.attempt,
            worker_id=worker_id,
            output_key="k",
            inference_ms=1,
            nsfw=[],
        )
        ids.append(job.id)
    return ids


def _process_worker(url: str, worker_id: str, start: object, out_dir: str) -> None:
    # Every process opens (and so migrates) the same fresh file at the same moment.
    start.wait()  # type: ignore[attr-defined]
    with Store.open(url) as store:
        if worker_id == "p0":
            for _ in range(JOBS):
                store.queue.submit(
                    Prediction(
                        id=uuid.uuid4().hex,
                        owner="alice",
                        model="m",
                        engine="motion",
                        status=Status.QUEUED,
                        spec=job_spec(),
                        input={},
                        created_at=datetime.now(UTC),
                    )
                )
        ids = _drain(store, worker_id)
        # Late starters may find the queue empty before p0 has submitted everything.
        while (
            store.predictions.queue_length()
            or store.predictions.list("alice", page=1, page_size=1)[1] < JOBS
        ):
            ids += _drain(store, worker_id)
    Path(out_dir, worker_id).write_text("\n".join(ids))


def test_threads_never_claim_the_same_job_twice(db_url: str, make: Make) -> None:
    # Shared and separate pools, all on the real clock.
    store = Store.open(db_url)
    submitted = {store.queue.submit(make()).id for _ in range(JOBS)}
    stores = [store, store, Store.open(db_url), Store.open(db_url)]
    results: list[list[str]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = _drain(stores[i], f"t{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores[1:]:
        s.close()
    assert errors == []
    claimed = Counter(i for r in results for i in r)
    assert set(claimed) == submitted
    assert max(claimed.values()) == 1
    assert store.predictions.list("alice", page=1, page_size=1)[1] == JOBS
    assert store.predictions.queue_length() == 0
    store.close()


def test_processes_never_claim_the_same_job_twice(db_url: str, tmp_path: Path) -> None:
    url = db_url
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_process_worker, args=(url, f"p{i}", start, str(tmp_path)))
        for i in range(3)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    claimed = Counter(
        line for i in range(3) for line in (tmp_path / f"p{i}").read_text().splitlines() if line
    )
    assert len(claimed) == JOBS
    assert max(claimed.values()) == 1
    with Store.open(url) as store:
        rows, total = store.predictions.list("alice", page=1, page_size=JOBS)
    assert total == JOBS
    assert {p.status for p in rows} == {Status.SUCCEEDED}
    assert all(p.attempt == 1 for p in rows)
