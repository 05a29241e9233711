"""The chaos suite's history checker (tests/history.py) on hand-made histories: a clean one
passes, and each broken promise is caught."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from history import (
    Attempt,
    Death,
    Delivery,
    History,
    Outcome,
    Row,
    attempts_from_log,
    check,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRAMES = 9


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def clean() -> History:
    """Two predictions: `a` ran once; `b`'s first worker was killed at 2 s and another
    claimed it at 5 s."""
    return History(
        accepted=frozenset({"a", "b"}),
        attempts=(
            Attempt("a", 1, "w1", at(0), Outcome.SUCCEEDED),
            Attempt("b", 1, "w2", at(1)),
            Attempt("b", 2, "w3", at(5), Outcome.SUCCEEDED),
        ),
        rows={
            "a": Row("succeeded", 1, "w1", "outputs/a/1.mp4"),
            "b": Row("succeeded", 2, "w3", "outputs/b/2.mp4"),
        },
        deliveries=(
            Delivery("a", "a", "completed"),
            Delivery("b", "b", "completed"),
            Delivery("b", "b", "completed"),  # a retry: same id
        ),
        frames={"a": FRAMES, "b": FRAMES},
        expected_frames=FRAMES,
        deaths=(Death("w2", at(2)),),
    )


def test_a_clean_history_passes_and_measures_recovery() -> None:
    verdict = check(clean())
    assert verdict.ok, verdict.problems
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert verdict.recovery_s == [3.0]


def with_row(h: History, pid: str, **changes: object) -> History:
    return replace(h, rows={**h.rows, pid: replace(h.rows[pid], **changes)})  # type: ignore[arg-type]


def test_an_accepted_prediction_left_running_is_lost() -> None:
    verdict = check(with_row(clean(), "a", status="running"))
    assert verdict.lost == ["a"]
    assert not verdict.ok


def test_an_accepted_prediction_missing_from_the_database_is_lost() -> None:
    h = clean()
    verdict = check(replace(h, rows={"b": h.rows["b"]}))
    assert verdict.lost == ["a"]


def test_a_row_nobody_accepted_is_unexpected() -> None:
    h = clean()
    verdict = check(replace(h, rows={**h.rows, "c": Row("succeeded", 1, "w1", "outputs/c/1.mp4")}))
    assert verdict.unexpected == ["c"]
    assert not verdict.ok


def test_two_successes_are_a_duplicate() -> None:
    h = clean()
    attempts = (*h.attempts[:1], replace(h.attempts[1], outcome=Outcome.SUCCEEDED), h.attempts[2])
    verdict = check(replace(h, attempts=attempts))
    assert verdict.duplicated == ["b"]


def test_a_success_by_a_replaced_attempt_is_caught() -> None:
    """The fence failed: attempt 1 finished though attempt 2 holds the row."""
    h = clean()
    attempts = (h.attempts[0], replace(h.attempts[1], outcome=Outcome.SUCCEEDED))
    verdict = check(replace(h, attempts=attempts))
    assert any("attempt 1 of w2 finished" in p for p in verdict.problems), verdict.problems


def test_a_success_no_live_worker_logged_is_caught() -> None:
    h = clean()
    verdict = check(replace(h, attempts=(replace(h.attempts[0], outcome=Outcome.OPEN),)))
    assert any("no live worker logged" in p for p in verdict.problems), verdict.problems


def test_a_success_logged_by_a_killed_worker_before_it_died_is_fine() -> None:
    """Killed between its finish and its log line: the row is its, no record is."""
    h = clean()
    attempts = (replace(h.attempts[0], outcome=Outcome.OPEN), *h.attempts[1:])
    verdict = check(replace(h, attempts=attempts, deaths=(*h.deaths, Death("w1", at(0.5)))))
    assert verdict.ok, verdict.problems


def test_one_attempt_claimed_twice_is_caught() -> None:
    h = clean()
    double = Attempt("b", 2, "w4", at(5), Outcome.LOST)
    verdict = check(replace(h, attempts=(*h.attempts, double)))
    assert any("attempt 2 claimed twice" in p for p in verdict.problems), verdict.problems


def test_a_resumed_worker_whose_late_write_got_through_is_caught() -> None:
    h = clean()
    stale = replace(h.attempts[1], outcome=Outcome.OPEN)
    assert check(replace(h, resumed=(stale,))).ok is False  # it logged no refusal
    refused = replace(h.attempts[1], outcome=Outcome.LOST)
    h = replace(h, attempts=(h.attempts[0], refused, h.attempts[2]))
    assert check(replace(h, resumed=(stale,))).ok


def test_a_missing_or_short_output_is_caught() -> None:
    h = clean()
    assert not check(replace(h, frames={"b": FRAMES})).ok
    assert not check(replace(h, frames={**h.frames, "a": FRAMES - 1})).ok


def test_an_output_of_another_attempt_is_caught() -> None:
    verdict = check(with_row(clean(), "b", output_key="outputs/b/1.mp4"))
    assert any("is not its attempt 2's" in p for p in verdict.problems), verdict.problems


def test_a_webhook_that_never_arrived_is_caught() -> None:
    h = clean()
    verdict = check(replace(h, deliveries=h.deliveries[1:]))
    assert any("a: succeeded, but its webhook never arrived" in p for p in verdict.problems)


def test_deliveries_with_two_webhook_ids_are_caught() -> None:
    h = clean()
    verdict = check(replace(h, deliveries=(*h.deliveries, Delivery("b", "b-2", "completed"))))
    assert any("2 webhook-ids" in p for p in verdict.problems), verdict.problems


def test_a_webhook_with_the_wrong_status_is_caught() -> None:
    h = clean()
    verdict = check(replace(h, deliveries=(*h.deliveries, Delivery("a", "a", "failed"))))
    assert not verdict.ok


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_other_terminal_states_count_as_terminal(status: str) -> None:
    h = with_row(clean(), "a", status=status, output_key=None)
    h = replace(
        h,
        attempts=(replace(h.attempts[0], outcome=Outcome.FAILED), *h.attempts[1:]),
        deliveries=(Delivery("a", "a", status), *h.deliveries[1:]),
        frames={"b": FRAMES},
    )
    verdict = check(h)
    assert verdict.ok, verdict.problems


def log_line(message: str, seconds: float = 0.0, logger: str = "i2v.worker") -> str:
    entry = {"time": at(seconds).isoformat(), "logger": logger, "message": message}
    return json.dumps(entry)


def test_attempts_are_read_from_a_json_log() -> None:
    lines = [
        log_line("worker-1 started"),
        log_line("worker-1 claimed p1 (attempt 1)", 1),
        log_line("worker-1 finished p1 in 450 ms", 2),
        log_line("worker-1 claimed p2 (attempt 3)", 3),
        log_line("worker-1 failed p2: storage unavailable", 4),
        log_line("worker-1 lost the lease on p2 before failing it", 4),
        log_line("worker-1 claimed p3 (attempt 1)", 5),
        log_line("worker-1 lost the lease on p3; its new owner carries on", 6),
        log_line("worker-1 claimed p4 (attempt 2)", 7),
        log_line("prediction claimed", 7, logger="i2v.jobs"),
        '{"time": "cut short by SIGK',
    ]
    assert attempts_from_log(lines) == [
        Attempt("p1", 1, "worker-1", at(1), Outcome.SUCCEEDED),
        Attempt("p2", 3, "worker-1", at(3), Outcome.LOST),
        Attempt("p3", 1, "worker-1", at(5), Outcome.LOST),
        Attempt("p4", 2, "worker-1", at(7), Outcome.OPEN),
    ]
