"""Retry classification and backoff bounds."""

from __future__ import annotations

import random

import pytest

from portway import errors
from portway.routing.breaker import Outcome
from portway.routing.config import GroupRouteConfig
from portway.routing.retry import RetryPolicy, is_retryable, outcome_of


@pytest.mark.parametrize(
    ("error", "retryable", "outcome"),
    [
        (errors.UpstreamError("x"), True, Outcome.FAILURE),
        (errors.UpstreamTimeoutError("x"), True, Outcome.FAILURE),
        (errors.UpstreamUnavailableError("x"), True, Outcome.FAILURE),
        (errors.UpstreamRateLimitError("x", retry_after=1), True, Outcome.RATE_LIMITED),
        (errors.UpstreamAuthError("x"), False, Outcome.FAILURE),
        (errors.UpstreamNotFoundError("x"), False, Outcome.FAILURE),
        (errors.UpstreamBadRequestError("x"), False, Outcome.SUCCESS),
        (errors.ContextLengthExceededError("x"), False, Outcome.SUCCESS),
        (errors.ContentPolicyError("x"), False, Outcome.SUCCESS),
        (errors.InvalidRequestError("x"), False, Outcome.SUCCESS),
    ],
)
def test_classification(error, retryable, outcome) -> None:
    assert is_retryable(error) is retryable
    assert outcome_of(error) is outcome


def test_a_retryable_class_with_a_client_status_is_still_not_retried() -> None:
    class Odd(errors.PortwayError):
        status_code = 422
        retryable = True

    assert not is_retryable(Odd("x"))


def test_full_jitter_backoff_stays_within_bounds() -> None:
    policy = RetryPolicy.from_config(
        GroupRouteConfig.model_validate({"retries": 5, "backoff": {"base": "100ms", "max": "1s"}})
    )
    rng = random.Random(1)
    for retry in range(1, 7):
        ceiling = min(1.0, 0.1 * 2 ** (retry - 1))
        samples = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # jitter covers the range
    assert policy.attempts == 6
