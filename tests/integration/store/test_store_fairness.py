"""Fair share between keys: round-robin over owners with queued work, oldest first within
an owner, weighted per key, owners at their running limit skipped; and the place in line
that `get_placed` reports is the order claims really take."""

from __future__ import annotations

from collections.abc import Callable

from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.store import Store

Make = Callable[..., Prediction]


def _claim_all(store: Store) -> list[str]:
    owners = []
    while (job := store.queue.claim("w", lease_seconds=60)) is not None:
        owners.append(job.owner)
        store.queue.succeed(
            job.id, attempt=job.attempt, worker_id="w", output_key="o", inference_ms=1, nsfw=[]
        )
    return owners


def test_a_single_prediction_behind_another_keys_many_is_next(store: Store, make: Make) -> None:
    heavy = [store.queue.submit(make(owner="heavy")) for _ in range(50)]
    first = store.queue.claim("w1", lease_seconds=60)
    assert first is not None
    assert first.id == heavy[0].id
    light = store.queue.submit(make(owner="light"))
    _, place = store.predictions.get_placed(light.id, owner="light")
    assert place == 0
    nxt = store.queue.claim("w2", lease_seconds=60)
    assert nxt is not None
    assert nxt.id == light.id
    # Then the heavy key's own work, oldest first.
    after = store.queue.claim("w3", lease_seconds=60)
    assert after is not None
    assert after.id == heavy[1].id


def test_claims_alternate_between_keys_oldest_first_within_each(store: Store, make: Make) -> None:
    a = [store.queue.submit(make(owner="a")) for _ in range(4)]
    b = [store.queue.submit(make(owner="b")) for _ in range(2)]
    order = []
    while (job := store.queue.claim("w", lease_seconds=60)) is not None:
        order.append(job.id)
    assert order == [a[0].id, b[0].id, a[1].id, b[1].id, a[2].id, a[3].id]


def test_weights_share_claims_in_proportion(db_url: str, make: Make) -> None:
    with Store.open(db_url) as store:
        store.keys.add("big", name="big", prefix="big", weight=3.0)
        for _ in range(12):
            store.queue.submit(make(owner="big"))
            store.queue.submit(make(owner="small"))
        first_eight = _claim_all(store)[:8]
    assert first_eight.count("big") == 6
    assert first_eight.count("small") == 2


def test_an_owner_at_its_running_limit_waits_and_others_pass(db_url: str, make: Make) -> None:
    with Store.open(db_url, limits=Limits(max_running=1)) as store:
        a1 = store.queue.submit(make(owner="a"))
        a2 = store.queue.submit(make(owner="a"))
        b1 = store.queue.submit(make(owner="b"))
        first = store.queue.claim("w1", lease_seconds=60)
        assert first is not None
        assert first.id == a1.id
        second = store.queue.claim("w2", lease_seconds=60)
        assert second is not None
        assert second.id == b1.id
        assert store.queue.claim("w3", lease_seconds=60) is None  # a2 waits for a1
        store.queue.succeed(
            a1.id, attempt=1, worker_id="w1", output_key="o", inference_ms=1, nsfw=[]
        )
        third = store.queue.claim("w3", lease_seconds=60)
        assert third is not None
        assert third.id == a2.id


def test_an_owner_back_from_a_pause_gets_no_burst(store: Store, make: Make) -> None:
    store.queue.submit(make(owner="early"))
    assert _claim_all(store) == ["early"]
    for _ in range(6):
        store.queue.submit(make(owner="busy"))
    assert len([store.queue.claim("w", lease_seconds=60) for _ in range(4)]) == 4
    for _ in range(3):
        store.queue.submit(make(owner="early"))
    order = [job.owner for job in iter(lambda: store.queue.claim("w", lease_seconds=60), None)]
    assert order == ["early", "busy", "early", "busy", "early"]


def test_the_place_in_line_is_the_order_claims_take(store: Store, make: Make) -> None:
    store.keys.add("w2", name="w2", prefix="w2", weight=2.0)
    submitted = [store.queue.submit(make(owner="a")) for _ in range(5)]
    submitted += [store.queue.submit(make(owner="b")) for _ in range(3)]
    submitted += [store.queue.submit(make(owner="w2")) for _ in range(4)]
    store.queue.claim("w", lease_seconds=60)  # someone is already served
    places = {
        p.id: store.predictions.get_placed(p.id, owner=p.owner)[1]
        for p in submitted
        if store.predictions.get(p.id).status.value == "queued"
    }
    claimed = [job.id for job in iter(lambda: store.queue.claim("w", lease_seconds=60), None)]
    assert sorted(places.values()) == list(range(len(claimed)))
    assert [places[id] for id in claimed] == list(range(len(claimed)))
