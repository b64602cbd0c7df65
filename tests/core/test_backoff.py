"""The one backoff every retry loop uses: its delays, its jitter, its reset."""

from __future__ import annotations

import pytest

from gateway.core.backoff import Backoff


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    counter = Backoff(first_s=0.5, cap_s=4.0).counter()
    assert [counter.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_success_starts_over() -> None:
    counter = Backoff(first_s=1.0, cap_s=60.0).counter()
    counter.next(), counter.next(), counter.next()
    counter.reset()
    assert counter.next() == 1.0


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_jitter_keeps_the_delay_between_its_fixed_part_and_the_ceiling(rand: float) -> None:
    backoff = Backoff(first_s=0.2, cap_s=15.0, jitter=0.5)
    for attempt in range(1, 12):
        ceiling = backoff.ceiling_s(attempt)
        assert ceiling / 2 <= backoff.delay_s(attempt, rand) <= ceiling


def test_a_long_outage_never_overflows() -> None:
    assert Backoff(first_s=1.0, cap_s=30.0, factor=10.0).delay_s(10_000, 0.3) == 30.0


@pytest.mark.parametrize("kwargs", [{"jitter": 1.5}, {"jitter": -0.1}, {"first_s": -1.0},
                                    {"factor": 0.5}])
def test_a_nonsense_backoff_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_the_hotline_retry_policy_waits_what_the_backoff_says() -> None:
    from gateway.escalation.wire import RetryPolicy

    policy = RetryPolicy(base_s=1.0, cap_s=30.0, jitter=0.5)
    assert [policy.delay_s(n, None, 0.0) for n in (1, 2, 6, 7)] == [0.5, 1.0, 15.0, 15.0]
    assert policy.delay_s(3, 12.0, 0.0) == 12.0  # the server's Retry-After wins
