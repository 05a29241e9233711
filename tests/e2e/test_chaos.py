"""Chaos: the service on PostgreSQL and S3 (an `i2v serve --workers 0` API process and 4
`i2v worker` processes sharing only the database and a bucket; a fake engine; webhooks on)
while, bounded in count and time, a random worker is SIGKILLed and restarted every few
seconds, one worker holding a job is SIGSTOPped until another has claimed its job and then
resumed (its late write must be refused), PostgreSQL is restarted once and the S3 server once.

Every attempt (claim, outcome, owner) is read from the workers' JSON logs, every row from
the database, every output from the bucket (downloaded and probed) and every webhook from
the receiver; `history.check` (tests/history.py, Jepsen's total-queue idea) then finds any
prediction lost, succeeded twice, finished by a replaced attempt, without a playable output
or without its webhook. Submits carry an Idempotency-Key and are retried with it through
the outages, so a retry never makes a second prediction.

CHAOS_JOBS scales it (default 200, a couple of minutes); `make chaos` runs 1,000. The
figures are printed as a row of the table in docs/reliability.md.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from history import (
    Attempt,
    Death,
    Delivery,
    History,
    Outcome,
    Row,
    Verdict,
    attempts_from_log,
    check,
    same_attempt,
)
from i2v.storage import S3Location, S3Storage
from i2v.video.probe import probe
from photos import photo_bytes
from postgres import postgres_database, postgres_stopped
from s3server import ACCESS_KEY, SECRET_KEY, S3Server
from server import Server
from service_api import FAKE_ROUTE, Receiver, fake_catalog, receiver

JOBS = int(os.environ.get("CHAOS_JOBS", "200"))
WORKERS = 4
FRAMES = 9
FRAME_DELAY = 0.05  # seconds per frame: a job takes about half a second, so kills hit jobs
LEASE_SECONDS = 2.0
KILL_EVERY_S = 3.0
MAX_KILLS = max(10, JOBS // 10)
STOP_AT_S, POSTGRES_AT_S, S3_AT_S = 4.0, 9.0, 16.0  # after the first submit
OUTAGE_S = 1.5  # how long PostgreSQL and S3 stay down
DEADLINE_S = 120 + JOBS * 0.6  # the whole run, submits to the last terminal row
WAIT_S = 60.0  # for one awaited thing (a takeover, a log line, the last webhooks)
PREFIX = "chaos"


class Slot:
    """One of the WORKERS places: an `i2v worker` process, replaced when killed. Each
    process logs to its own file, so a line cut short by SIGKILL spoils nothing after it."""

    def __init__(self, root: Path, index: int, env: dict[str, str]) -> None:
        self.root, self.index, self.env = root, index, env
        self.logs: list[Path] = []
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{self.index}-{len(self.logs)}.log"
        self.logs.append(log)
        args = [sys.executable, "-m", "i2v", "worker", "--data-dir", str(self.root)]
        with log.open("ab") as out:
            return subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def attempts(self, log: Path | None = None) -> list[Attempt]:
        text = (log or self.logs[-1]).read_text(errors="replace")
        return attempts_from_log(text.splitlines())

    def holding(self) -> Attempt | None:
        """The attempt the current process is on (claimed, nothing logged after), if any."""
        attempts = self.attempts()
        return attempts[-1] if attempts and attempts[-1].outcome is Outcome.OPEN else None

    def worker_id(self) -> str | None:
        """The current process's worker id, once it has logged its start."""
        for line in self.logs[-1].read_text(errors="replace").splitlines():
            try:
                message = str(json.loads(line).get("message", ""))
            except (ValueError, AttributeError):
                continue
            if message.endswith(" started"):
                return message.removesuffix(" started")
        return None

    def kill_and_restart(self) -> Death | None:
        """SIGKILL the process and start another; its death, if it had started."""
        owner = self.worker_id()
        at = datetime.now(UTC)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = self._spawn()
        return Death(owner, at) if owner else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # stopped or not
            self.proc.wait(timeout=30)


@dataclass
class Run:
    """What happened, as the chaos loop saw it."""

    accepted: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> id
    refusals: Counter[str] = field(default_factory=Counter)  # of retried submits, by answer
    submit_errors: list[str] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)
    kills: int = 0
    stopped: Attempt | None = None  # the attempt the SIGSTOPped worker held
    stopped_slot: Slot | None = None
    takeover_s: float = 0.0  # from its SIGSTOP until another worker claimed its job
    restarts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    over: threading.Event = field(default_factory=threading.Event)  # ends the submitter


@pytest.fixture
def pg(postgres_server: str | None) -> Iterator[tuple[str, str]]:
    """(cluster, database URL): the cluster too, to restart it."""
    if postgres_server is None:
        pytest.skip("PostgreSQL not available here (needs initdb, pg_ctl and psycopg)")
    with postgres_database(postgres_server) as url:
        yield postgres_server, url


@pytest.mark.timeout(DEADLINE_S + 3 * WAIT_S + 120)
def test_nothing_accepted_is_lost_or_done_twice_under_chaos(
    tmp_path: Path, pg: tuple[str, str], s3_server: S3Server
) -> None:
    cluster, url = pg
    bucket = s3_server.new_bucket()
    env = {
        **os.environ,
        "I2V_DATABASE_URL": url,
        "I2V_STORAGE_URL": f"s3://{bucket}/{PREFIX}",
        "I2V_S3_ENDPOINT": s3_server.endpoint,
        "I2V_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "I2V_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "I2V_URL_SECRET": "chaos-secret-shared-by-every-process",
        "I2V_LEASE_SECONDS": str(LEASE_SECONDS),
        "I2V_HEARTBEAT_SECONDS": "0.4",
        "I2V_POLL_SECONDS": "0.2",
        # Kills retry a job (and the one stopped past its lease), and none may run out: a
        # job can be hit by several of the kills. Storage outages are ridden out within an
        # attempt (the worker tries the call again for ~15 s), so they spend none.
        "I2V_MAX_ATTEMPTS": "10",
        "I2V_ALLOW_WEBHOOKS": "127.0.0.1",
        "I2V_WEBHOOK_RETRY_SECONDS": "0.5",
        "I2V_WEBHOOK_RETRY_MAX_SECONDS": "2",
        "I2V_WEBHOOK_ATTEMPTS": "60",
        "I2V_SAFETY_CHECKER": "off",
        "I2V_LOG_FORMAT": "json",
    }
    catalog = fake_catalog(tmp_path / "catalog.toml", frame_delay=FRAME_DELAY, frames=[FRAMES])
    api = Server(tmp_path / "api", catalog=catalog, workers=0, extra_env=env)
    database = sa.create_engine(url, pool_pre_ping=True)
    slots: list[Slot] = []
    run = Run()
    with receiver() as hooks:
        try:
            api.start()
            slots.extend(Slot(api.data_dir, i, env) for i in range(WORKERS))
            _chaos(run, api, slots, hooks.url, cluster, s3_server, database)
            _wait_for(lambda: _hooked(hooks) >= set(run.accepted.values()), "the last webhooks")
            stopped = run.stopped
            assert stopped is not None
            _wait_for(lambda: _outcome(slots, stopped) is not Outcome.OPEN, "the resumed worker")
            history = _history(run, slots, hooks, database, s3_server.location(bucket, PREFIX))
        finally:
            run.over.set()
            for slot in slots:
                slot.close()
            api.stop()
            database.dispose()

    verdict = check(history)
    figures = Figures.of(run, history, verdict)
    print(figures.text())
    assert not run.submit_errors, run.submit_errors[:5]
    assert verdict.ok, "\n".join(verdict.problems[:30])
    assert figures.failed == 0, "a job ran out of attempts"
    # An outage is a retryable 503 in the envelope (or a dropped connection), never a 500.
    assert "500" not in run.refusals, run.refusals


@dataclass(frozen=True)
class Figures:
    jobs: int
    attempts: int
    max_attempts: int  # the most attempts one prediction took (the database's count)
    kills: int
    stops: int
    restarts: str
    refused: int  # attempts whose fenced write was refused (LeaseLost)
    failed: int
    lost: int
    duplicated: int
    unexpected: int
    webhooks: int
    max_recovery_s: float
    takeover_s: float
    refusals: str  # what the outages answered the submits that were retried
    seconds: float

    @classmethod
    def of(cls, run: Run, history: History, verdict: Verdict) -> Figures:
        rows = history.rows.values()
        return cls(
            jobs=len(history.accepted),
            attempts=len(history.attempts),
            max_attempts=max((r.attempt for r in rows), default=0),
            kills=run.kills,
            stops=1 if run.stopped else 0,
            restarts=", ".join(run.restarts),
            refused=sum(1 for a in history.attempts if a.outcome is Outcome.LOST),
            failed=sum(1 for r in rows if r.status == "failed"),
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            unexpected=len(verdict.unexpected),
            webhooks=len(history.deliveries),
            max_recovery_s=max(verdict.recovery_s, default=0.0),
            takeover_s=run.takeover_s,
            refusals=", ".join(f"{n}x {what}" for what, n in sorted(run.refusals.items())),
            seconds=run.seconds,
        )

    def text(self) -> str:
        """The figures in words, then as a row of docs/reliability.md's table."""
        row = (
            f"| CHAOS_JOBS={self.jobs} | {self.jobs} | {self.attempts} | {self.max_attempts} |"
            f" {self.kills} | {self.stops} | {self.restarts} | {self.refused} | {self.failed} |"
            f" {self.lost} | {self.duplicated} | {self.unexpected} | {self.webhooks} |"
            f" {self.max_recovery_s:.1f} | {self.takeover_s:.1f} | {self.seconds:.0f} |"
        )
        return (
            f"\nchaos: {self.jobs} jobs, {self.attempts} attempts logged (at most"
            f" {self.max_attempts} for one), {self.kills} kills, {self.stops} stop,"
            f" restarts: {self.restarts}; {self.refused} late writes refused,"
            f" {self.failed} failed, {self.lost} lost, {self.duplicated} duplicated,"
            f" {self.unexpected} unexpected; {self.webhooks} webhooks;"
            f" max recovery {self.max_recovery_s:.1f} s, takeover of the stopped worker's"
            f" job {self.takeover_s:.1f} s; submits retried after: {self.refusals or 'none'};"
            f" {self.seconds:.0f} s\n{row}"
        )


def _chaos(
    run: Run,
    api: Server,
    slots: list[Slot],
    hook_url: str,
    cluster: str,
    s3: S3Server,
    database: sa.Engine,
) -> None:
    """Submit JOBS predictions while the chaos runs, into `run`; returns when all are
    terminal."""
    submitting = threading.Thread(target=_submit_all, args=(api, hook_url, run), daemon=True)
    started = time.monotonic()
    deadline = started + DEADLINE_S
    submitting.start()
    rng = random.Random(11)
    last_kill = started
    pending = {"stop", "postgres", "s3"}
    while True:
        now = time.monotonic()
        assert now < deadline, f"not done in {DEADLINE_S:.0f} s: {_progress(run, database)}"
        elapsed = now - started
        if now - last_kill >= KILL_EVERY_S and run.kills < MAX_KILLS:
            death = rng.choice(_killable(slots, run)).kill_and_restart()
            run.kills += 1
            run.deaths += [death] if death else []
            last_kill = time.monotonic()
        if "stop" in pending and elapsed >= STOP_AT_S and _stop_one(slots, run, database):
            pending.discard("stop")
        if "postgres" in pending and elapsed >= POSTGRES_AT_S:
            pending.discard("postgres")
            with postgres_stopped(cluster):
                time.sleep(OUTAGE_S)
            run.restarts.append("PostgreSQL")
        if "s3" in pending and elapsed >= S3_AT_S:
            pending.discard("s3")
            with s3.stopped():
                time.sleep(OUTAGE_S)
            run.restarts.append("S3")
        if not submitting.is_alive():
            assert "stop" not in pending, "no worker was ever seen holding a job to stop"
            if not pending and _all_terminal(database, set(run.accepted.values())):
                break
        time.sleep(0.2)
    run.seconds = time.monotonic() - started


def _killable(slots: list[Slot], run: Run) -> list[Slot]:
    """Every slot but the resumed one until it has logged what became of its late write."""
    stopped, slot = run.stopped, run.stopped_slot
    if stopped is None or slot is None or _outcome([slot], stopped) is not Outcome.OPEN:
        return slots
    return [s for s in slots if s is not slot]


def _submit_all(api: Server, hook_url: str, run: Run) -> None:
    """Submit JOBS predictions, each retried with its Idempotency-Key until accepted (an
    outage answers 5xx or drops the connection). Anything else is a submit error."""
    image = base64.b64encode(photo_bytes()).decode()
    with api.client() as client:
        for n in range(JOBS):
            key = f"chaos-{n}"
            while key not in run.accepted and not run.over.is_set():
                try:
                    r = client.post(
                        f"/api/v3/{FAKE_ROUTE}",
                        params={"webhook": hook_url},
                        json={"prompt": "p", "image": image, "seed": n},
                        headers={"Idempotency-Key": key},
                        timeout=30,
                    )
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code == 200:
                    run.accepted[key] = r.json()["data"]["id"]
                    break
                if r is not None and r.status_code < 500:
                    run.submit_errors.append(f"{key}: {r.status_code} {r.text[:200]}")
                    break
                run.refusals[str(r.status_code) if r is not None else "dropped"] += 1
                time.sleep(0.2)
            time.sleep(0.05)


def _stop_one(slots: list[Slot], run: Run, database: sa.Engine) -> bool:
    """SIGSTOP a worker that holds a job, until another worker has claimed that job (its
    lease expired), then SIGCONT it. False when no worker was stopped holding a job."""
    for slot in slots:
        held = slot.holding()
        if held is None:
            continue
        stopped_at = time.monotonic()
        slot.proc.send_signal(signal.SIGSTOP)
        try:
            if not _still_holds(database, held):
                continue  # it finished the job between the look and the signal
            others = [s for s in slots if s is not slot]
            until = stopped_at + WAIT_S
            while not _claimed_again(others, held):
                assert time.monotonic() < until, f"nobody took over {held.prediction}"
                time.sleep(0.1)
            run.takeover_s = time.monotonic() - stopped_at
        finally:
            slot.proc.send_signal(signal.SIGCONT)
        run.stopped, run.stopped_slot = held, slot
        return True
    return False


def _still_holds(database: sa.Engine, attempt: Attempt) -> bool:
    """Whether the row is still running under `attempt` (not finished, not taken over)."""
    query = sa.text("SELECT status, attempt, lease_owner FROM predictions WHERE id = :id")
    try:
        with database.connect() as conn:
            row = conn.execute(query, {"id": attempt.prediction}).first()
    except sa.exc.OperationalError:
        return False
    return row is not None and tuple(row) == ("running", attempt.number, attempt.owner)


def _claimed_again(slots: list[Slot], held: Attempt) -> bool:
    return any(
        a.prediction == held.prediction and a.number > held.number
        for s in slots
        for a in s.attempts()
    )


def _outcome(slots: list[Slot], attempt: Attempt) -> Outcome:
    """How `attempt` ended, as its worker logged it so far."""
    for slot in slots:
        for log in slot.logs:
            for a in slot.attempts(log):
                if same_attempt(a, attempt):
                    return a.outcome
    raise AssertionError(f"{attempt} is in no log")


def _all_terminal(database: sa.Engine, ids: set[str]) -> bool:
    query = sa.text(
        "SELECT id FROM predictions WHERE status IN ('succeeded', 'failed', 'cancelled')"
    )
    try:
        with database.connect() as conn:
            done = set(conn.execute(query).scalars())
    except sa.exc.OperationalError:
        return False  # PostgreSQL is restarting
    return ids <= done


def _progress(run: Run, database: sa.Engine) -> str:
    with database.connect() as conn:
        counts = conn.execute(sa.text("SELECT status, count(*) FROM predictions GROUP BY 1"))
        return f"accepted {len(run.accepted)}, rows {dict(counts.tuples().all())}"


def _hooked(hooks: Receiver) -> set[str]:
    return {json.loads(body)["id"] for _headers, body in list(hooks.calls)}


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S:g} s for {what}"
        time.sleep(0.2)


def _history(
    run: Run, slots: list[Slot], hooks: Receiver, database: sa.Engine, bucket: S3Location
) -> History:
    attempts = tuple(a for slot in slots for log in slot.logs for a in slot.attempts(log))
    with database.connect() as conn:
        rows = {
            r.id: Row(r.status, r.attempt, r.lease_owner, r.output_key)
            for r in conn.execute(
                sa.text("SELECT id, status, attempt, lease_owner, output_key FROM predictions")
            )
        }
    deliveries = []
    for headers, body in list(hooks.calls):
        data = json.loads(body)
        deliveries.append(Delivery(data["id"], headers.get("webhook-id", ""), data["status"]))
    storage = S3Storage(bucket)
    frames = {
        pid: _frames(storage, row.output_key)
        for pid, row in rows.items()
        if row.status == "succeeded" and row.output_key
    }
    return History(
        accepted=frozenset(run.accepted.values()),
        attempts=attempts,
        rows=rows,
        deliveries=tuple(deliveries),
        frames=frames,
        expected_frames=FRAMES,
        deaths=tuple(run.deaths),
        resumed=(run.stopped,) if run.stopped else (),
    )


def _frames(storage: S3Storage, key: str) -> int | None:
    """The frame count of the object at `key`, downloaded and probed; None if it is
    missing or does not play."""
    try:
        data = storage.get_bytes(key)
    except Exception:
        return None
    with tempfile.NamedTemporaryFile(suffix=".mp4") as copy:
        copy.write(data)
        copy.flush()
        try:
            return probe(copy.name).frames
        except Exception:
            return None
