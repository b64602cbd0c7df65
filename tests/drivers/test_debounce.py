"""Debounce and hold, fed bounce sequences (MockFactory does not simulate bounce)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from drivers.debounce import Debouncer


def kinds(transitions: list) -> list[str]:  # type: ignore[type-arg]
    return [t.kind for t in transitions]


def test_press_reported_on_first_edge_and_bounce_ignored() -> None:
    d = Debouncer(bounce_s=0.03, hold_s=3)
    out = d.edge(pressed=True, now=10.000)
    for i, level in enumerate([False, True, False, True]):
        out += d.edge(pressed=level, now=10.001 + i * 0.002)
    out += d.tick(10.040)
    assert kinds(out) == ["press"]
    assert d.pressed


def test_release_after_bounce_settles() -> None:
    d = Debouncer(bounce_s=0.03, hold_s=3)
    out = d.edge(pressed=True, now=0.0) + d.tick(0.05)
    out += d.edge(pressed=False, now=1.0) + d.edge(pressed=True, now=1.001) + d.edge(pressed=False, now=1.002)
    out += d.tick(1.05)
    assert kinds(out) == ["press", "release"]


def test_glitch_shorter_than_bounce_gives_press_and_release() -> None:
    d = Debouncer(bounce_s=0.03, hold_s=3)
    out = d.edge(pressed=True, now=0.0) + d.edge(pressed=False, now=0.005)
    assert d.next_deadline() == 0.03
    out += d.tick(0.03)
    assert kinds(out) == ["press", "release"]


def test_hold_after_hold_time_once() -> None:
    d = Debouncer(bounce_s=0.02, hold_s=2.0)
    out = d.edge(pressed=True, now=5.0)
    out += d.tick(6.0)
    assert d.next_deadline() == 7.0
    out += d.tick(7.0) + d.tick(8.0)
    assert kinds(out) == ["press", "hold"]
    assert out[1].held_s == 2
    out += d.edge(pressed=False, now=9.0)
    assert kinds(out) == ["press", "hold", "release"]


def test_release_before_hold_time_gives_no_hold() -> None:
    d = Debouncer(bounce_s=0.02, hold_s=2.0)
    out = d.edge(pressed=True, now=0.0) + d.edge(pressed=False, now=1.0) + d.tick(5.0)
    assert kinds(out) == ["press", "release"]


@given(st.lists(st.tuples(st.booleans(), st.floats(min_value=0.0001, max_value=0.5)), max_size=60))
def test_reported_levels_alternate_and_end_at_raw_level(steps: list[tuple[bool, float]]) -> None:
    d = Debouncer(bounce_s=0.03, hold_s=100)
    now, out, level = 0.0, [], False
    for level, gap in steps:
        now += gap
        out += d.tick(now) + d.edge(pressed=level, now=now)
    out += d.tick(now + 1)
    presses_releases = [k for k in kinds(out) if k != "hold"]
    assert all(a != b for a, b in pairwise(presses_releases))
    assert d.pressed == level
