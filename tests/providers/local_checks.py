"""Checks shared by the tests of the real local model."""

from __future__ import annotations

import time

from portway.providers.local import LocalProvider


def assert_stopped(provider: LocalProvider, before: int) -> None:
    """A left generation was dropped: the engine runs nothing and counts no more."""
    engine = provider.engine
    assert engine is not None
    deadline = time.monotonic() + 60
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.05)
    settled = provider.tokens_generated
    time.sleep(0.3)
    assert engine.running == 0 and provider.tokens_generated == settled
    assert settled - before < 1000
