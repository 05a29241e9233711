"""The chaos suite's history checker (tests/e2e/test_chaos.py), after Jepsen's total-queue
checker: what goes in must come out, once.

A `History` is what the suite recorded: the predictions the API accepted, every attempt
the workers logged (claim, outcome, owner), the database's last word on each prediction,
the webhooks the receiver got, the frames of each output object as probed from the bucket,
and when which worker was killed. `check` is pure: it reads a history and returns a
`Verdict` listing every broken promise, so hand-made histories test it
(tests/unit/test_history.py). `attempts_from_log` reads one worker process's JSON log.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from i2v.storage.keys import output_key

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})  # the database's statuses
# The status a webhook's body (WaveSpeed's envelope) reports for each terminal status.
HOOK_STATUS = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # "finished <id>": the fenced finish was accepted
    FAILED = "failed"  # failed, or handed back to the queue (storage away)
    CANCELLED = "cancelled"
    LOST = "lost"  # a fenced write was refused: another attempt had the lease
    OPEN = "open"  # nothing logged after the claim (the process died, or is stopped)


@dataclass(frozen=True)
class Attempt:
    prediction: str
    number: int
    owner: str  # the worker id
    claimed_at: datetime
    outcome: Outcome = Outcome.OPEN


@dataclass(frozen=True)
class Row:
    """The database's last word on one prediction."""

    status: str
    attempt: int
    owner: str | None  # lease_owner: the worker of the last attempt
    output_key: str | None


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the receiver got."""

    prediction: str  # the body's id
    webhook_id: str
    status: str  # the body's status


@dataclass(frozen=True)
class Death:
    owner: str  # the worker id of the process SIGKILLed
    at: datetime


@dataclass(frozen=True)
class History:
    accepted: frozenset[str]
    attempts: tuple[Attempt, ...]
    rows: Mapping[str, Row]
    deliveries: tuple[Delivery, ...]
    frames: Mapping[str, int | None]  # per succeeded prediction; None: missing or unplayable
    expected_frames: int
    deaths: tuple[Death, ...] = ()
    # Attempts whose worker was SIGSTOPped past its lease, then resumed: each one's late
    # write must have been refused.
    resumed: tuple[Attempt, ...] = ()


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)  # accepted, never terminal
    duplicated: list[str] = field(default_factory=list)  # succeeded by two attempts
    unexpected: list[str] = field(default_factory=list)  # in the database, never accepted
    problems: list[str] = field(default_factory=list)  # every broken promise, in words
    recovery_s: list[float] = field(default_factory=list)  # kill -> next claim, per held job

    @property
    def ok(self) -> bool:
        return not self.problems


def check(h: History) -> Verdict:
    """Every promise the queue makes, checked against one history."""
    v = Verdict()
    by_prediction: dict[str, list[Attempt]] = defaultdict(list)
    for a in h.attempts:
        by_prediction[a.prediction].append(a)
    dead = {d.owner for d in h.deaths}

    v.unexpected = sorted(set(h.rows) - h.accepted)
    for pid in v.unexpected:
        v.problems.append(f"{pid}: in the database but never accepted")
    for pid in sorted(h.accepted):
        row = h.rows.get(pid)
        if row is None or row.status not in TERMINAL:
            v.lost.append(pid)
            v.problems.append(f"{pid}: accepted, then {row.status if row else 'gone'}")
            continue
        attempts = by_prediction.get(pid, [])
        _check_attempts(pid, row, attempts, dead, v)
        if row.status == "succeeded":
            _check_output(pid, row, h, v)
    _check_webhooks(h, v)
    for stale in h.resumed:
        outcome = next((a.outcome for a in h.attempts if same_attempt(a, stale)), Outcome.OPEN)
        if outcome is not Outcome.LOST:
            v.problems.append(
                f"{stale.prediction}: attempt {stale.number} of {stale.owner} was resumed past"
                f" its lease and ended {outcome}, not refused"
            )
    v.recovery_s = _recoveries(h.deaths, by_prediction)
    return v


def _check_attempts(
    pid: str, row: Row, attempts: list[Attempt], dead: set[str], v: Verdict
) -> None:
    numbers = [a.number for a in attempts]
    for n in sorted({n for n in numbers if numbers.count(n) > 1}):
        v.problems.append(f"{pid}: attempt {n} claimed twice")
    if numbers and max(numbers) > row.attempt:
        v.problems.append(f"{pid}: attempt {max(numbers)} logged, the row says {row.attempt}")
    wins = [a for a in attempts if a.outcome is Outcome.SUCCEEDED]
    if len(wins) > 1:
        v.duplicated.append(pid)
        v.problems.append(f"{pid}: succeeded {len(wins)} times ({_names(wins)})")
    for a in wins:
        if row.status != "succeeded" or (a.number, a.owner) != (row.attempt, row.owner):
            v.problems.append(
                f"{pid}: attempt {a.number} of {a.owner} finished, but the row is {row.status}"
                f" by attempt {row.attempt} of {row.owner}"
            )
    if row.status == "succeeded" and not wins and row.owner not in dead:
        # Only a process killed between its finish and its log line may leave no record.
        v.problems.append(f"{pid}: succeeded, but no live worker logged finishing it")


def _check_output(pid: str, row: Row, h: History, v: Verdict) -> None:
    if row.output_key != output_key(pid, row.attempt):
        v.problems.append(f"{pid}: output {row.output_key} is not its attempt {row.attempt}'s")
    frames = h.frames.get(pid)
    if frames is None:
        v.problems.append(f"{pid}: output {row.output_key} missing or unplayable")
    elif frames != h.expected_frames:
        v.problems.append(f"{pid}: output has {frames} frames, not {h.expected_frames}")


def _check_webhooks(h: History, v: Verdict) -> None:
    ids: dict[str, set[str]] = defaultdict(set)
    statuses: dict[str, set[str]] = defaultdict(set)
    for d in h.deliveries:
        ids[d.prediction].add(d.webhook_id)
        statuses[d.prediction].add(d.status)
    for pid in sorted(set(ids) - h.accepted):
        v.problems.append(f"{pid}: a webhook for a prediction never accepted")
    owners: dict[str, str] = {}
    for pid in sorted(h.accepted):
        row = h.rows.get(pid)
        if row is None or row.status not in TERMINAL:
            continue  # lost already
        if pid not in ids:
            v.problems.append(f"{pid}: {row.status}, but its webhook never arrived")
            continue
        if len(ids[pid]) > 1:
            v.problems.append(f"{pid}: deliveries with {len(ids[pid])} webhook-ids")
        for webhook_id in ids[pid]:
            if owners.setdefault(webhook_id, pid) != pid:
                v.problems.append(f"{pid}: webhook-id {webhook_id} also {owners[webhook_id]}'s")
        if statuses[pid] != {HOOK_STATUS[row.status]}:
            v.problems.append(f"{pid}: {row.status}, its webhooks said {sorted(statuses[pid])}")


def _recoveries(deaths: Iterable[Death], by_prediction: Mapping[str, list[Attempt]]) -> list[float]:
    """For each job a killed worker held (claimed, nothing logged after), the seconds
    until another worker claimed it. A job it had finished unlogged is never claimed again,
    and counts nothing."""
    recovered = []
    held = [a for attempts in by_prediction.values() for a in attempts if a.outcome is Outcome.OPEN]
    for d in deaths:
        for a in held:
            if a.owner != d.owner or a.claimed_at > d.at:
                continue
            later = [b.claimed_at for b in by_prediction[a.prediction] if b.number > a.number]
            if later:
                recovered.append((min(later) - d.at).total_seconds())
    return recovered


def same_attempt(a: Attempt, b: Attempt) -> bool:
    """Whether `a` and `b` record one attempt (whatever each says of how it ended)."""
    return (a.prediction, a.number, a.owner) == (b.prediction, b.number, b.owner)


def _names(attempts: Iterable[Attempt]) -> str:
    return ", ".join(f"attempt {a.number} of {a.owner}" for a in attempts)


# -- reading the workers' logs --------------------------------------------------------------

_CLAIMED = re.compile(r"^(\S+) claimed (\S+) \(attempt (\d+)\)$")
_ENDED = (
    (re.compile(r"^(\S+) finished (\S+) in \d+ ms$"), Outcome.SUCCEEDED),
    (re.compile(r"^(\S+) cancelled (\S+)"), Outcome.CANCELLED),
    (re.compile(r"^(\S+) lost the lease on (\S+?)[;\s]"), Outcome.LOST),
    (re.compile(r"^(\S+) failed (\S+?): "), Outcome.FAILED),
)


def attempts_from_log(lines: Iterable[str]) -> list[Attempt]:
    """The attempts one worker process logged (`I2V_LOG_FORMAT=json`), in claim order.
    An outcome ends the owner's latest attempt on that prediction; the first one counts,
    except that a refused write ("lost the lease ... before failing it") overrides the
    "failed" logged just before it. Lines that are not JSON
    (a line cut short by SIGKILL) are skipped."""
    attempts: list[Attempt] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("logger") != "i2v.worker":
            continue
        message = str(entry.get("message", ""))
        claimed = _CLAIMED.match(message)
        if claimed:
            owner, pid, number = claimed.groups()
            at = datetime.fromisoformat(entry["time"])
            attempts.append(Attempt(pid, int(number), owner, at))
            continue
        for pattern, outcome in _ENDED:
            ended = pattern.match(message)
            if ended:
                _end(attempts, ended.group(1), ended.group(2), outcome)
                break
    return attempts


def _end(attempts: list[Attempt], owner: str, pid: str, outcome: Outcome) -> None:
    for i in range(len(attempts) - 1, -1, -1):
        a = attempts[i]
        if a.owner == owner and a.prediction == pid:
            if a.outcome is Outcome.OPEN or (a.outcome, outcome) == (Outcome.FAILED, Outcome.LOST):
                attempts[i] = replace(a, outcome=outcome)
            return
