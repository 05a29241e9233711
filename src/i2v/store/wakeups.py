"""In-process wake-ups: a worker thread blocks until a submit, a sync waiter until its job moves.

Only commits made by this process are seen; across processes callers fall back to polling
(every wait has a timeout and callers re-read the store). Tokens close the gap between
"read the row" and "start waiting": take a token first, read, then wait with it, and a change
made in between returns at once.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

# Ids whose last change is remembered; an id evicted while someone waits on it only makes
# that waiter return early (it re-reads), never miss a change.
_REMEMBERED = 10_000


class Wakeups:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counter = itertools.count(1)
        self._work = 0
        self._changes: OrderedDict[str, int] = OrderedDict()
        self._seen = threading.local()

    def work_token(self) -> int:
        with self._cond:
            return self._work

    def change_token(self, id: str) -> int:
        with self._cond:
            return self._changes.get(id, 0)

    def notify_work(self) -> None:
        with self._cond:
            self._work = next(self._counter)
            self._cond.notify_all()

    def notify_change(self, *ids: str) -> None:
        if not ids:
            return
        with self._cond:
            for id in ids:
                self._changes[id] = next(self._counter)
                self._changes.move_to_end(id)
            while len(self._changes) > _REMEMBERED:
                self._changes.popitem(last=False)
            self._cond.notify_all()

    def wait_for_work(self, timeout: float, token: int | None = None) -> None:
        """Return when work arrived after `token` (default: since this thread last returned
        from here; the first call returns at once), or after `timeout` seconds."""
        with self._cond:
            seen = token if token is not None else getattr(self._seen, "work", -1)
            self._cond.wait_for(lambda: self._work != seen, timeout)
            self._seen.work = self._work

    def wait_for_change(self, id: str, timeout: float, token: int | None = None) -> None:
        """Return when `id` changed after `token` (default: from now on), or after `timeout`."""
        with self._cond:
            seen = token if token is not None else self._changes.get(id, 0)
            self._cond.wait_for(lambda: self._changes.get(id, 0) != seen, timeout)
