"""Wake-ups after the store's commits: work for the workers, changes for the waiters on a job.

The queue announces each commit here once it is committed. Waiters in this process hear
of it through `Wakeups`; on PostgreSQL, waiters in every other process too, through
`Broadcast` (LISTEN/NOTIFY). SQLite deployments are one process, or poll: every wait has
a timeout and its caller re-reads the store.
"""

from __future__ import annotations

from i2v.store.broadcast import Broadcast
from i2v.store.database import Database
from i2v.store.wakeups import Wakeups


class Changes:
    def __init__(self, database: Database) -> None:
        self._local = Wakeups()
        self._broadcast = None if database.is_sqlite else Broadcast(database.engine, self._local)

    # -- announcing (after the commit) ----------------------------------------------------

    def notify_work(self) -> None:
        """A prediction became claimable (submitted or requeued)."""
        self._local.notify_work()
        if self._broadcast is not None:
            self._broadcast.work()

    def notify_change(self, *ids: str) -> None:
        """These predictions changed."""
        self._local.notify_change(*ids)
        if self._broadcast is not None and ids:
            self._broadcast.change(*ids)

    # -- waiting --------------------------------------------------------------------------

    def work_token(self) -> int:
        return self._local.work_token()

    def wait_for_work(self, timeout: float, *, token: int | None = None) -> None:
        """Block until a submit or requeue (in this process; on PostgreSQL in any), or
        `timeout` seconds.

        Without `token`, any submit since this thread last returned from here counts, so a
        worker loop (claim, nothing, wait) cannot miss one made in between."""
        if self._broadcast is not None:
            self._broadcast.listen()
        self._local.wait_for_work(timeout, token)

    def change_token(self, id: str) -> int:
        return self._local.change_token(id)

    def wait_for_change(self, id: str, timeout: float, *, token: int | None = None) -> None:
        """Block until prediction `id` changes (in this process; on PostgreSQL in any), or
        `timeout` seconds.

        Race-free pattern: `t = changes.change_token(id)`, read the prediction, and if it
        is not done, `changes.wait_for_change(id, timeout, token=t)`."""
        if self._broadcast is not None:
            self._broadcast.listen()
        self._local.wait_for_change(id, timeout, token)

    def close(self) -> None:
        if self._broadcast is not None:
            self._broadcast.close()
