"""Wake-ups across processes on PostgreSQL: LISTEN/NOTIFY on one channel.

`Wakeups` only sees this process's commits. With PostgreSQL the API and the workers are
usually separate processes (or machines), and polling alone would put half a poll interval
(250 ms) between a submit and its claim. So every wake-up is also sent with `pg_notify`
after its commit, and a listener thread per process turns the ones it hears into local
wake-ups. Polling stays underneath: a lost notification (the listener reconnecting) costs
one poll interval, never a job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from i2v.store.wakeups import Wakeups

log = logging.getLogger(__name__)

CHANNEL = "i2v_wakeups"
WORK = "work"
CHANGE = "change:"
_LISTEN_TIMEOUT_S = 1.0  # how often the listener looks at its stop flag
_RECONNECT_S = 1.0


class Broadcast:
    def __init__(
        self, engine: sa.Engine, local: Wakeups, connect: Callable[[], Any] | None = None
    ) -> None:
        self._engine = engine
        self._local = local
        self._connect = connect or self._driver_connection
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- sending ------------------------------------------------------------------------

    def work(self) -> None:
        self._send(WORK)

    def change(self, *ids: str) -> None:
        for id in ids:
            self._send(CHANGE + id)

    def _send(self, payload: str) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))
                conn.commit()
        except sa.exc.SQLAlchemyError:
            # Listeners fall back to polling; the write this announces is already committed.
            log.warning("could not send wake-up %r", payload, exc_info=True)

    # -- listening ----------------------------------------------------------------------

    def listen(self) -> None:
        """Start the listener thread if it is not running (idempotent, thread-safe)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="i2v-wakeup-listener", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=_LISTEN_TIMEOUT_S * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever was sent while we were not listening: look once.
                    self._local.notify_work()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_LISTEN_TIMEOUT_S):
                            self._deliver(note.payload)
            except Exception:  # the database restarting, a network blip: reconnect
                log.warning("wake-up listener lost its connection; reconnecting", exc_info=True)
                self._stop.wait(_RECONNECT_S)

    def _deliver(self, payload: str) -> None:
        if payload == WORK:
            self._local.notify_work()
        elif payload.startswith(CHANGE):
            self._local.notify_change(payload[len(CHANGE) :])

    def _driver_connection(self) -> Any:
        """A connection of its own (not the pool's), in autocommit as LISTEN needs."""
        import psycopg

        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        return psycopg.connect(*args, **kwargs, autocommit=True)
