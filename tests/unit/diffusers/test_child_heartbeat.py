"""The child's heartbeat: `Busy` while a render runs, nothing after it (pure: no torch)."""

from __future__ import annotations

import threading

from i2v.engines.diffusers import messages
from i2v.engines.diffusers.child import heartbeat


class Recording:
    """Stands in for the child's Channel; `beats` is set once three messages arrived."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.beats = threading.Event()

    def send(self, message: messages.FromChild) -> None:
        self.sent.append(message)
        if len(self.sent) >= 3:
            self.beats.set()


def test_busy_is_sent_while_the_block_runs_and_never_after_it() -> None:
    channel = Recording()
    with heartbeat(channel, 0.01):
        assert channel.beats.wait(timeout=10)
    count = len(channel.sent)

    # the heartbeat thread was joined on exit: nothing can follow the render's Done
    assert all(isinstance(m, messages.Busy) for m in channel.sent)
    assert not [t for t in threading.enumerate() if t.name == "i2v-heartbeat"]
    assert len(channel.sent) == count


def test_a_short_render_sends_no_heartbeat() -> None:
    channel = Recording()
    with heartbeat(channel, 60.0):
        pass
    assert channel.sent == []
