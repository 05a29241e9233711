from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from i2v.domain.errors import Conflict, InputError, NotFound
from i2v.domain.job import Lora
from i2v.domain.prediction import RUNCOMFY, Flags, Prediction
from i2v.domain.status import Status
from i2v.store import Store
from jobs import job_spec

Make = Callable[..., Prediction]


def test_submit_then_get_round_trips_every_field(store: Store, make: Make, clock: Any) -> None:
    t0 = clock.start
    p = make(
        spec=job_spec(
            prompt="über",
            last_image_key="inputs/last.png",
            loras=(Lora("loras/a.safetensors", 0.5),),
            engine_options={"nested": {"a": [1, 2.5, None]}},
        ),
        flags=Flags(enable_base64_output=True, dialect=RUNCOMFY, base_url="https://h.example"),
        max_attempts=5,
        status=Status.SUCCEEDED,  # ignored: a new prediction is always queued
    )
    saved = store.queue.submit(p)
    got = store.predictions.get(p.id)
    assert got == saved
    assert got.status is Status.QUEUED
    assert got.spec == p.spec
    assert got.input == p.input
    assert got.flags == p.flags
    assert got.max_attempts == 5
    assert got.attempt == 0
    assert got.created_at == t0
    assert got.created_at.tzinfo is not None
    assert got.cancel_requested is False


def test_datetimes_round_trip_exactly_in_utc(store: Store, make: Make) -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=plus_two)
    p = make(created_at=moment)
    store.queue.submit(p)
    got = store.predictions.get(p.id)
    assert got.created_at == moment
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.microsecond == 999999


def test_naive_datetimes_are_refused(store: Store, make: Make) -> None:
    with pytest.raises(Exception, match="timezone-aware"):
        store.queue.submit(make(created_at=datetime(2026, 1, 1)))


def test_get_hides_other_owners_predictions_with_the_same_message(store: Store, make: Make) -> None:
    p = store.queue.submit(make(owner="alice"))
    assert store.predictions.get(p.id, owner="alice").id == p.id
    with pytest.raises(NotFound) as theirs:
        store.predictions.get(p.id, owner="bob")
    with pytest.raises(NotFound) as absent:
        store.predictions.get("0" * 32, owner="bob")
    assert str(theirs.value).replace(p.id, "X") == str(absent.value).replace("0" * 32, "X")


def test_duplicate_id_is_a_conflict(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    with pytest.raises(Conflict, match=p.id):
        store.queue.submit(make(id=p.id))


def test_list_pages_newest_first_with_total(store: Store, clock: Any, make: Make) -> None:
    t0 = clock.start
    ids = []
    for i in range(7):
        ids.append(store.queue.submit(make(created_at=t0 + timedelta(seconds=i))).id)
    store.queue.submit(make(owner="bob"))
    page1, total = store.predictions.list("alice", page=1, page_size=3)
    page3, _ = store.predictions.list("alice", page=3, page_size=3)
    assert total == 7
    assert [p.id for p in page1] == ids[::-1][:3]
    assert [p.id for p in page3] == [ids[0]]
    assert store.predictions.list("alice", page=4, page_size=3) == ([], 7)
    assert store.predictions.list("nobody", page=1, page_size=3) == ([], 0)
    with pytest.raises(InputError, match="page: must be at least 1, got 0"):
        store.predictions.list("alice", page=0, page_size=3)


def place(store: Store, p: Prediction) -> int | None:
    got, position = store.predictions.get_placed(p.id, owner=p.owner)
    assert got.id == p.id
    return position


def test_queue_position_counts_down_as_earlier_jobs_are_claimed(store: Store, make: Make) -> None:
    a, b, c = (store.queue.submit(make()) for _ in range(3))
    assert [place(store, p) for p in (a, b, c)] == [0, 1, 2]
    assert store.predictions.queue_length() == 3
    store.queue.claim("w", lease_seconds=30)
    assert [place(store, p) for p in (a, b, c)] == [None, 0, 1]
    store.queue.cancel(b.id, owner="alice")
    assert [place(store, p) for p in (b, c)] == [None, 0]
    assert store.predictions.queue_length() == 1
    with pytest.raises(NotFound):
        store.predictions.get_placed("f" * 32, owner="alice")
    with pytest.raises(NotFound):
        store.predictions.get_placed(c.id, owner="mallory")


def test_cancel_in_each_state(store: Store, make: Make) -> None:
    queued = store.queue.submit(make())
    outcome = store.queue.cancel(queued.id, owner="alice")
    assert outcome.kind == "cancelled"
    assert outcome.prediction.status is Status.CANCELLED
    assert outcome.prediction.finished_at is not None

    running = store.queue.submit(make())
    claimed = store.queue.claim("w", lease_seconds=30)
    assert claimed is not None
    assert claimed.id == running.id
    outcome = store.queue.cancel(running.id, owner="alice")
    assert outcome.kind == "cancel_requested"
    assert outcome.prediction.status is Status.RUNNING
    assert outcome.prediction.cancel_requested
    assert store.queue.heartbeat(running.id, attempt=1, worker_id="w", lease_seconds=30) is True
    done = store.queue.acknowledge_cancel(running.id, attempt=1, worker_id="w")
    assert done.status is Status.CANCELLED

    assert store.queue.cancel(running.id, owner="alice").kind == "not_cancellable"
    with pytest.raises(NotFound):
        store.queue.cancel(running.id, owner="bob")


def test_delete_terminal_and_queued_but_only_requests_cancel_of_running(
    store: Store, make: Make
) -> None:
    running = store.queue.submit(make())
    store.queue.claim("w", lease_seconds=30)
    queued = store.queue.submit(make())
    finished = store.queue.submit(make())
    store.queue.cancel(finished.id, owner="alice")
    theirs = store.queue.submit(make(owner="bob"))

    deleted = store.queue.delete(
        [finished.id, queued.id, running.id, theirs.id, "nope"], owner="alice"
    )

    assert [p.id for p in deleted] == [finished.id, queued.id]
    assert all(p.status is Status.CANCELLED for p in deleted)
    for p in deleted:
        with pytest.raises(NotFound):
            store.predictions.get(p.id)
    left = store.predictions.get(running.id)
    assert left.status is Status.RUNNING
    assert left.cancel_requested
    assert store.predictions.get(theirs.id).status is Status.QUEUED
    assert store.queue.delete([], owner="alice") == []


def test_api_keys(store: Store, clock: Any) -> None:
    t0 = clock.start
    store.keys.add("a" * 64, name="laptop", prefix="i2v_abcd")
    clock.advance(1)
    store.keys.add("b" * 64, name="ci", prefix="i2v_efgh")
    found = store.keys.find("a" * 64)
    assert found is not None
    assert found.name == "laptop"
    assert found.active
    assert found.created_at == t0
    assert store.keys.find("c" * 64) is None
    with pytest.raises(Conflict):
        store.keys.add("a" * 64, name="again", prefix="i2v_abcd")
    assert [k.name for k in store.keys.list()] == ["laptop", "ci"]
    assert store.keys.revoke("i2v_efgh") is True
    assert store.keys.find("b" * 64) is None
    assert store.keys.revoke("ci") is False  # already revoked
    assert store.keys.revoke("laptop") is True
    assert [k.active for k in store.keys.list()] == [False, False]


def test_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        Store.open("sqlite://")
