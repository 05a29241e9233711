from __future__ import annotations

import threading
import time
from collections.abc import Callable

from i2v.domain.prediction import Prediction
from i2v.store import Store

Make = Callable[..., Prediction]
LONG = 60.0  # a waiter that is not woken would hold the test this long
TIMEOUT = 0.1  # a wait that is meant to time out


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_wait_for_work_wakes_on_submit(store: Store, make: Make) -> None:
    store.changes.wait_for_work(0)  # first call in a thread returns at once; consume it
    waiting = threading.Event()
    claimed: list[Prediction | None] = []

    def worker() -> None:
        token = store.changes.work_token()
        waiting.set()
        store.changes.wait_for_work(LONG, token=token)
        claimed.append(store.queue.claim("w", lease_seconds=30))

    thread = _in_thread(worker)
    waiting.wait()
    p = store.queue.submit(make())
    thread.join(LONG / 2)
    assert not thread.is_alive()
    assert claimed[0] is not None
    assert claimed[0].id == p.id


def test_wait_for_work_does_not_miss_a_submit_made_before_it_waits(
    store: Store, make: Make
) -> None:
    empty, submitted = threading.Event(), threading.Event()
    claimed: list[Prediction | None] = []

    def worker() -> None:
        store.changes.wait_for_work(0)  # a thread's first wait returns at once
        claimed.append(store.queue.claim("w", lease_seconds=30))
        empty.set()
        submitted.wait()  # the submit lands between the empty claim and the wait
        store.changes.wait_for_work(LONG)
        claimed.append(store.queue.claim("w", lease_seconds=30))

    thread = _in_thread(worker)
    empty.wait()
    p = store.queue.submit(make())
    submitted.set()
    thread.join(LONG / 2)
    assert not thread.is_alive()
    assert claimed[0] is None
    assert claimed[1] is not None
    assert claimed[1].id == p.id


def test_wait_for_change_wakes_on_finish(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    job = store.queue.claim("w", lease_seconds=30)
    assert job is not None
    token = store.changes.change_token(p.id)
    seen: list[str] = []

    def sync_waiter() -> None:
        store.changes.wait_for_change(p.id, LONG, token=token)
        seen.append(store.predictions.get(p.id).status.value)

    thread = _in_thread(sync_waiter)
    store.queue.succeed(p.id, attempt=1, worker_id="w", output_key="k", inference_ms=1, nsfw=[])
    thread.join(LONG / 2)
    assert seen == ["succeeded"]


def test_wait_for_change_with_a_stale_token_returns_at_once(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    token = store.changes.change_token(p.id)
    store.queue.cancel(p.id, owner="alice")  # changed between the read and the wait
    thread = _in_thread(lambda: store.changes.wait_for_change(p.id, LONG, token=token))
    thread.join(LONG / 2)
    assert not thread.is_alive()


def test_waits_return_on_timeout(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    if not store.database.is_sqlite:
        # The listener announces itself with a wake-up when it connects: let that land
        # now, not inside the waits timed below. (It connects after the submit above was
        # sent, so that one never reaches it.)
        _listening(store)
    store.changes.wait_for_work(0)  # a thread's first wait returns at once; consume it
    work, change = store.changes.work_token(), store.changes.change_token(p.id)
    waits: list[Callable[[], None]] = [
        lambda: store.changes.wait_for_work(TIMEOUT),
        lambda: store.changes.wait_for_change(p.id, TIMEOUT),
    ]
    for wait in waits:
        started = time.monotonic()
        wait()
        elapsed = time.monotonic() - started
        # Not before the timeout (the condition waits on this same clock; a microsecond
        # for float rounding), and not stuck waiting for a wake-up that never comes.
        assert TIMEOUT - 1e-6 <= elapsed < LONG / 2
    assert store.changes.work_token() == work  # nothing woke them: they timed out
    assert store.changes.change_token(p.id) == change


def _listening(store: Store) -> int:
    """Start `store`'s listener and return once it listens (it signals work on connecting)."""
    token = store.changes.work_token()
    store.changes.wait_for_work(LONG, token=token)
    return store.changes.work_token()


def test_on_postgres_a_submit_in_another_process_wakes_the_worker(
    postgres_url: str, make: Make
) -> None:
    with Store.open(postgres_url) as api, Store.open(postgres_url) as worker:
        token = _listening(worker)
        claimed: list[Prediction | None] = []

        def wait_then_claim() -> None:
            worker.changes.wait_for_work(LONG, token=token)
            claimed.append(worker.queue.claim("w", lease_seconds=30))

        thread = _in_thread(wait_then_claim)
        p = api.queue.submit(make())  # another Store, as another process: only NOTIFY connects them
        thread.join(LONG / 2)
        assert not thread.is_alive()
        assert worker.changes.work_token() != token  # woken, not timed out
        assert claimed[0] is not None
        assert claimed[0].id == p.id


def test_on_postgres_a_finish_in_another_process_wakes_a_sync_waiter(
    postgres_url: str, make: Make
) -> None:
    with Store.open(postgres_url) as api, Store.open(postgres_url) as worker:
        _listening(api)
        p = api.queue.submit(make())
        assert worker.queue.claim("w", lease_seconds=30) is not None
        token = api.changes.change_token(p.id)
        thread = _in_thread(lambda: api.changes.wait_for_change(p.id, LONG, token=token))
        worker.queue.succeed(
            p.id, attempt=1, worker_id="w", output_key="outputs/x/1.mp4", inference_ms=1, nsfw=[]
        )
        thread.join(LONG / 2)
        assert not thread.is_alive()
        assert api.changes.change_token(p.id) != token
        assert api.predictions.get(p.id).status.is_terminal
