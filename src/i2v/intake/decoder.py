"""Decode untrusted images in child processes, each decode under a time budget.

Why processes and not threads: a decode stuck in libjpeg holds its thread until it ends, and
Python cannot stop a thread; a process can be killed. So each decode runs in one of a few
spawned child processes (spawned, not forked: the API process has threads and an event loop)
and the caller waits at most `budget_s`; past it the child is killed, replaced, and the image
refused by name. A child that dies on its own (a decoder crash, the OOM killer) refuses the
image the same way instead of taking the API down.

The children return `ImageFacts`, not pixels: accepting a job needs the size and the format,
and shipping a 48 MB pixel array back through a pipe would cost more than the decode. Only
the request (the bytes, the rules) crosses the pipe.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from i2v.domain.errors import ImageError
from i2v.intake.image import RUNCOMFY_RULES, ImageFacts, ImageRules, inspect_image

DEFAULT_WORKERS = 2
DEFAULT_BUDGET_S = 10.0
# A slot in the pool is waited for at most this long on top of the budget: past it every
# child is busy with someone's slow image, and this request is refused rather than queued.
_QUEUE_WAIT_S = 30.0


@dataclass(frozen=True)
class _Request:
    data: bytes
    field: str
    rules: ImageRules | None


@dataclass(frozen=True)
class _Refusal:
    message: str  # already carries the "field: " prefix
    field: str | None
    value: object


def _serve(conn: Connection) -> None:
    """A child's loop: one request in, one `ImageFacts` or `_Refusal` out, until EOF."""
    while True:
        try:
            request: _Request = conn.recv()
        except (EOFError, OSError):
            return
        answer: ImageFacts | _Refusal
        try:
            answer = inspect_image(request.data, field=request.field, rules=request.rules)
        except ImageError as exc:
            answer = _Refusal(exc.message, exc.field, exc.value)
        conn.send(answer)


class _Child:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child_end,), name="i2v-decode", daemon=True
        )
        self.process.start()
        child_end.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class DecodePool:
    """A few decoding child processes shared by every request of one API process.

    `inspect` blocks its calling thread (the API calls it from a worker thread, never on the
    event loop) until the child answers, the budget runs out or no child is free in time.
    """

    def __init__(self, *, workers: int = DEFAULT_WORKERS, budget_s: float = DEFAULT_BUDGET_S):
        if workers < 1:
            raise ValueError(f"decode workers: must be at least 1, got {workers}")
        self.budget_s = budget_s
        self._workers = workers
        self._idle: queue.Queue[_Child] = queue.Queue()
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._started = self._closed = False

    def start(self) -> None:
        """Start the children now (they take ~0.2 s to import); `inspect` starts them on
        first use otherwise. Safe to call more than once."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        for _ in range(self._workers):
            self._add()

    def inspect(
        self, data: bytes, *, field: str = "image", rules: ImageRules | None = RUNCOMFY_RULES
    ) -> ImageFacts:
        """`inspect_image(data, ...)` in a child; `ImageError` when it refuses the image,
        takes longer than the budget, crashes the decoder or finds no free child."""
        self.start()
        try:
            child = self._idle.get(timeout=_QUEUE_WAIT_S)
        except queue.Empty:
            raise ImageError(
                "the image decoders are all busy; try again shortly", field=field
            ) from None
        healthy = False
        try:
            child.conn.send(_Request(data, field, rules))
            if not child.conn.poll(self.budget_s):
                raise ImageError(
                    f"decoding must finish within {self.budget_s:g} s, took longer; "
                    "send a smaller or simpler image",
                    field=field,
                    value=len(data),
                )
            answer = child.conn.recv()
            healthy = True
        except (EOFError, OSError):
            raise ImageError(
                "could not be decoded: the decoder stopped on this image",
                field=field,
                value=len(data),
            ) from None
        finally:
            if healthy:
                self._idle.put(child)
            else:  # killed mid-decode or dead already: a fresh child takes its place
                self._replace(child)
        if isinstance(answer, _Refusal):
            raise ImageError(answer.message, field=answer.field, value=answer.value)
        assert isinstance(answer, ImageFacts), type(answer)
        return answer

    def close(self) -> None:
        """Stop every child; `inspect` must not be called afterwards."""
        with self._lock:
            self._closed = True
            children, self._children = self._children, []
        for child in children:
            child.kill()

    def _add(self) -> None:
        child = _Child()
        with self._lock:
            if self._closed:
                child.kill()
                return
            self._children.append(child)
        self._idle.put(child)

    def _replace(self, child: _Child) -> None:
        with self._lock:
            if child in self._children:
                self._children.remove(child)
        child.kill()
        self._add()
