"""Queue benchmark: claim and submit latency at depth, and claims/s with 8 workers.

    python bench/queue_depth.py            # 100, 10,000 and 100,000 queued; SQLite and PostgreSQL
    python bench/queue_depth.py --quick    # 100 and 2,000 queued, fewer samples (~20 s)

For each backend and depth: a fresh database whose backlog is inserted with one
executemany (spread over OWNERS keys, as a shared server would hold it), then ANALYZE,
then ROUNDS rounds of one timed `store.queue.submit` and one timed `store.queue.claim`
(the claimed job is finished untimed, so the depth and the running count stay level).
The claim is the fair-share claim (round-robin over owners; `i2v.store.fairness`).
Then claims/s: WORKERS threads, each claiming and at once finishing jobs (a no-op engine)
from a backlog of DRAIN jobs, on one Store as `i2v serve --workers 8` runs them.

PostgreSQL is a throwaway cluster started the way the tests start one (tests/postgres.py);
without initdb it is skipped. `--explain` prints each backend's plan of the claim's pick
at the deepest queue. Results print as markdown and replace the `## Queue (bench/queue_depth.py)`
section of docs/benchmarks.md (unless --no-doc).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

import report as report_module
from i2v.domain.job import JobSpec
from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store, fairness
from i2v.store.rows import prediction_values
from i2v.store.tables import predictions

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests"))  # the PostgreSQL helpers the tests use

SECTION = "## Queue (bench/queue_depth.py)"
COMMAND = "python bench/queue_depth.py"  # `make bench` runs this
DEPTHS = (100, 10_000, 100_000)
QUICK_DEPTHS = (100, 2_000)
OWNERS = 10
ROUNDS = 300
QUICK_ROUNDS = 60
WORKERS = 8
DRAIN = 2_000
QUICK_DRAIN = 400
TARGET = 1.5  # claim p50 at the deepest queue within this many times the p50 at 100


def _prediction(owner: str) -> Prediction:
    spec = JobSpec(
        image_key="inputs/bench.png",
        prompt="slow push in on the scene",
        seed=1,
        width=1280,
        height=720,
        frames=121,
        fps=24,
    )
    return Prediction(
        id=uuid.uuid4().hex,
        owner=owner,
        model="bench/fake",
        engine="fake",
        status=Status.QUEUED,
        spec=spec,
        input={"prompt": spec.prompt, "image": "https://example.com/a.png", "seed": 1},
        created_at=datetime.now(UTC),
    )


def fill(store: Store, depth: int) -> None:
    """`depth` queued predictions, in one executemany: all but OWNERS-1 of them one key's,
    then one for each other key."""
    now = datetime.now(UTC)
    template = prediction_values(_prediction("owner-0"), now=now)
    template.update(
        status=Status.QUEUED.value,
        cancel_requested=False,
        lease_owner=None,
        lease_until=None,
        expired_at=None,
        idempotency_key=None,
        request_hash=None,
    )
    # The case fairness is for, and the one a query plan can get wrong: one key holds the
    # backlog, and each other key's work sits behind all of it.
    owners = ["owner-0"] * (depth - OWNERS + 1) + [f"owner-{n}" for n in range(1, OWNERS)]
    rows = [{**template, "id": uuid.uuid4().hex, "owner": owner} for owner in owners]
    with store.database.write() as conn:
        for n in range(OWNERS):
            fairness.enter(conn, f"owner-{n}", Limits())
        if rows:
            conn.execute(predictions.insert(), rows)
    with store.database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


@dataclass(frozen=True)
class Latency:
    backend: str
    depth: int
    submit_ms: list[float]
    claim_ms: list[float]


def _finish(store: Store, job: Prediction, worker: str) -> None:
    store.queue.succeed(
        job.id, attempt=job.attempt, worker_id=worker, output_key="x", inference_ms=0, nsfw=[]
    )


def measure_latency(store: Store, backend: str, depth: int, rounds: int) -> Latency:
    submits, claims = [], []
    owners = [f"owner-{n}" for n in range(OWNERS)]
    for i in range(rounds):
        p = _prediction(owners[i % OWNERS])
        start = time.perf_counter()
        store.queue.submit(p)
        submits.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        job = store.queue.claim("bench", lease_seconds=60)
        claims.append((time.perf_counter() - start) * 1000)
        assert job is not None
        _finish(store, job, "bench")
    return Latency(backend, depth, submits, claims)


def measure_claims_per_second(store: Store, jobs: int) -> float:
    """WORKERS threads drain `jobs` queued predictions, claiming and finishing at once."""
    fill(store, jobs)
    start = time.perf_counter()

    def work(worker: str) -> None:
        while (job := store.queue.claim(worker, lease_seconds=60)) is not None:
            _finish(store, job, worker)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert store.predictions.queue_length() == 0
    return jobs / elapsed


def explain(store: Store) -> str:
    """The database's plan for the claim's pick (the fair share's scalar subquery)."""
    dialect = store.database.engine.dialect
    pick = sa.select(fairness.pick(dialect, None))
    sql = str(pick.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
    with store.database.read() as conn:
        rows = conn.exec_driver_sql(prefix + sql).all()
    return "\n".join(" | ".join(str(c) for c in row) for row in rows)


@contextmanager
def postgres_server() -> Iterator[str | None]:
    """A throwaway PostgreSQL cluster for the run, or None where none can be started."""
    from postgres import postgres_cluster

    cluster = postgres_cluster()
    try:
        server = next(cluster)
        if server is None:
            print("no PostgreSQL here (initdb); SQLite only", file=sys.stderr)
        yield server
    finally:
        cluster.close()


@contextmanager
def database(backend: str, work: Path, server: str | None) -> Iterator[str]:
    """A fresh, empty database of `backend`."""
    if backend == "SQLite":
        yield f"sqlite:///{work / f'{uuid.uuid4().hex}.db'}"
        return
    from postgres import postgres_database

    assert server is not None
    with postgres_database(server) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller queues, fewer samples")
    parser.add_argument("--no-doc", action="store_true", help="do not update the doc")
    parser.add_argument("--explain", action="store_true", help="print the claim's plans")
    args = parser.parse_args()
    depths = QUICK_DEPTHS if args.quick else DEPTHS
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    drain = QUICK_DRAIN if args.quick else DRAIN

    results: list[Latency] = []
    throughput: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="i2v-bench-queue-") as tmp, postgres_server() as pg:
        work = Path(tmp)
        names = ["SQLite"] + (["PostgreSQL"] if pg is not None else [])
        for depth in depths:
            for backend in names:
                with database(backend, work, pg) as url, Store.open(url) as store:
                    print(f"{backend}: {depth:,} queued", file=sys.stderr)
                    fill(store, depth)
                    results.append(measure_latency(store, backend, depth, rounds))
                    if args.explain and depth == depths[-1]:
                        print(f"-- {backend} plan at {depth:,}:\n{explain(store)}")
        for backend in names:
            with database(backend, work, pg) as url, Store.open(url) as store:
                print(f"{backend}: {WORKERS} workers draining {drain:,}", file=sys.stderr)
                throughput[backend] = measure_claims_per_second(store, drain)

    text = report(results, throughput, depths, rounds, drain, quick=args.quick)
    print(text)
    if not args.no_doc:
        report_module.write_section(SECTION, text)


def report(
    results: list[Latency],
    throughput: dict[str, float],
    depths: tuple[int, ...],
    rounds: int,
    drain: int,
    *,
    quick: bool,
) -> str:
    command = COMMAND + (" --quick" if quick else "")
    lines = [
        SECTION,
        "",
        f"`{command}` on {report_module.machine()}.",
        "For each backend and depth: a fresh database with the backlog inserted in one",
        f"executemany (one key holds all of it but one job for each of {OWNERS - 1} other",
        f"keys, queued behind it), then ANALYZE; then {rounds} rounds, the {OWNERS} keys",
        "taking turns, of one timed submit and one timed claim (the fair-share claim: round-robin",
        "over keys, oldest first within each), the claimed job finished untimed so the depth",
        "stays level. Times are the store call's, in one process (no HTTP). Claims/s:",
        f"{WORKERS} threads on one Store claiming and at once finishing {drain:,} jobs",
        "(a no-op engine). PostgreSQL: a throwaway local cluster (unix socket, fsync off).",
        "`--explain` prints the claim's plans: on both backends each key's oldest queued job",
        "is one probe of the (owner, status, seq) index, whatever the depth.",
        "",
        "| Backend | Queued | submit p50 ms | submit p99 ms | claim p50 ms | claim p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.depth:,} | {statistics.median(r.submit_ms):.2f}"
            f" | {report_module.percentile(r.submit_ms, 99):.2f}"
            f" | {statistics.median(r.claim_ms):.2f}"
            f" | {report_module.percentile(r.claim_ms, 99):.2f} |"
        )
    lines += ["", f"| Backend | {WORKERS} workers, claims/s |", "|---|---:|"]
    lines += [f"| {backend} | {rate:,.0f} |" for backend, rate in throughput.items()]
    lines += ["", "| Target | Met | Measured |", "|---|---|---|"]
    deepest, shallowest = depths[-1], depths[0]
    for backend in dict.fromkeys(r.backend for r in results):
        by_depth = {r.depth: statistics.median(r.claim_ms) for r in results if r.backend == backend}
        ratio = by_depth[deepest] / by_depth[shallowest]
        met = "yes" if ratio <= TARGET else "**no**"
        lines.append(
            f"| {backend}: claim p50 at {deepest:,} within {TARGET}x of at {shallowest:,}"
            f" | {met} | {ratio:.2f}x ({by_depth[deepest]:.2f} vs {by_depth[shallowest]:.2f} ms) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
