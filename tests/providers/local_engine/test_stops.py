"""Stop sequences over text that arrives a token at a time."""

from __future__ import annotations

from portway.providers.local_engine.stops import StopScanner


def test_text_that_may_start_a_stop_is_held_until_it_cannot() -> None:
    scanner = StopScanner(["END"])
    emitted = [scanner.feed(piece) for piece in ("abc E", "N", "D tail")]
    assert emitted == [("abc", False), (" ", False), ("", True)]
    assert scanner.pending == ""


def test_without_stops_everything_passes_at_once() -> None:
    scanner = StopScanner(["", ""])
    assert scanner.feed("E") == ("E", False) and scanner.pending == ""


def test_a_held_tail_that_is_no_stop_stays_pending_for_the_end() -> None:
    scanner = StopScanner(["xyz"])
    assert scanner.feed("ab x") == ("ab", False)
    assert scanner.pending == " x"
