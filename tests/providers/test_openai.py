"""How OpenAI-compatible upstream errors map onto Portway's errors (what the router acts on)."""

from __future__ import annotations

import pytest

from portway.errors import (
    PortwayError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
    UpstreamUnavailableError,
)
from portway.providers.openai import map_openai_error

BODY = b'{"error": {"message": "busy", "type": "server_error", "code": null}}'


@pytest.mark.parametrize(
    ("status", "headers", "error_class", "retry_after"),
    [
        (503, {}, UpstreamUnavailableError, None),
        (503, {"retry-after": "4"}, UpstreamOverloadedError, 4.0),
        (503, {"retry-after-ms": "250"}, UpstreamOverloadedError, 0.25),
        (429, {"retry-after": "2"}, UpstreamRateLimitError, 2.0),
    ],
)
def test_overload_keeps_retry_after(
    status: int, headers: dict[str, str], error_class: type[PortwayError], retry_after: float | None
) -> None:
    error = map_openai_error(status, BODY, headers)
    assert type(error) is error_class
    assert getattr(error, "retry_after", None) == retry_after
    assert error.status_code == status
