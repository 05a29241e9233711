"""Uploads in the store: each belongs to its key and counts against that key's quota, its
bytes are written once, and it expires when no submit made or used it for a while."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import FakeClock
from i2v.domain.errors import Conflict, NotFound, PayloadTooLarge
from i2v.storage.keys import upload_id, upload_key, upload_prefix
from i2v.store import Store

HOUR = 3600.0


def test_quota_counts_declared_and_stored_bytes_per_owner(store: Store) -> None:
    store.uploads.record(
        upload_key("a"), owner="alice", size=600, written=True, quota=1000, field="file"
    )
    store.uploads.record(
        upload_key("b"), owner="alice", size=400, written=False, quota=1000, field="size"
    )
    with pytest.raises(PayloadTooLarge) as refused:
        store.uploads.record(
            upload_key("c"), owner="alice", size=1, written=False, quota=1000, field="size"
        )
    assert refused.value.field == "size"
    assert "quota of 1000 bytes" in refused.value.message
    assert "1000 bytes" in refused.value.message
    # Another key's uploads are its own.
    store.uploads.record(
        upload_key("d"), owner="bob", size=1000, written=True, quota=1000, field="file"
    )


def test_deleting_frees_the_quota(store: Store) -> None:
    key = upload_key("a")
    store.uploads.record(key, owner="alice", size=1000, written=True, quota=1000, field="file")
    store.uploads.deleted([key])
    store.uploads.record(
        upload_key("b"), owner="alice", size=1000, written=True, quota=1000, field="file"
    )


def test_a_ticket_takes_one_write(store: Store) -> None:
    key = upload_key("t.png")
    store.uploads.record(key, owner="alice", size=3, written=False, quota=None, field="size")
    assert store.uploads.start_write(key).size == 3
    with pytest.raises(Conflict):
        store.uploads.start_write(key)
    store.uploads.write_failed(key)  # that PUT stored nothing: the ticket takes one again
    store.uploads.start_write(key)
    with pytest.raises(Conflict):
        store.uploads.start_write(key)
    with pytest.raises(NotFound):
        store.uploads.start_write(upload_key("never-made"))
    written = upload_key("binary")
    store.uploads.record(written, owner="alice", size=3, written=True, quota=None, field="file")
    with pytest.raises(Conflict):
        store.uploads.start_write(written)


def test_owned_finds_only_the_owners_upload(store: Store) -> None:
    key = upload_key("a.png")
    store.uploads.record(key, owner="alice", size=3, written=True, quota=None, field="file")
    uid = upload_id(key)
    assert uid is not None
    assert store.uploads.owned(upload_prefix(uid), owner="alice").key == key
    with pytest.raises(NotFound):
        store.uploads.owned(upload_prefix(uid), owner="bob")


def test_unused_uploads_are_due_and_a_use_restarts_the_day(store: Store, clock: FakeClock) -> None:
    used, unused = upload_key("used"), upload_key("unused")
    for key in (used, unused):
        store.uploads.record(key, owner="alice", size=1, written=True, quota=None, field="file")
    clock.advance(20 * HOUR)
    store.uploads.used(used)
    clock.advance(5 * HOUR)
    day_ago = clock() - timedelta(hours=24)
    assert store.uploads.due(day_ago, limit=10) == [unused]
    clock.advance(20 * HOUR)
    assert store.uploads.due(clock() - timedelta(hours=24), limit=10) == [unused, used]
