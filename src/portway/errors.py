"""The one exception hierarchy of Portway, rendered as OpenAI's error object at the boundary.

Every failure a client can see is a ``PortwayError``. Each subclass fixes the HTTP
status, the OpenAI ``type`` and a default ``code``; ``retryable`` tells the router
whether another attempt (or another deployment) may succeed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class PortwayError(Exception):
    """Base class: an error with an HTTP status and an OpenAI error body."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}
        # For the operator's log only, never rendered: e.g. the upstream host that failed.
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


# Client errors -------------------------------------------------------------


class InvalidRequestError(PortwayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(PortwayError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(PortwayError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class NotFoundError(PortwayError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
        )


class MethodNotAllowedError(PortwayError):
    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTooLargeError(PortwayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaTypeError(PortwayError):
    status_code = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class ContextLengthExceededError(InvalidRequestError):
    default_code = "context_length_exceeded"


class ContentPolicyError(InvalidRequestError):
    """The provider refused the request (or its answer) under its content policy."""

    default_code = "content_policy_violation"


class GuardrailBlockedError(InvalidRequestError):
    """A guardrail in block mode found what it guards against (the message names it)."""

    default_code = "guardrail_blocked"


class RateLimitError(PortwayError):
    """The client (or the deployment it needs) is over a rate limit; ``retry_after`` in seconds."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", str(max(1, round(retry_after))))


class InsufficientQuotaError(PortwayError):
    status_code = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


# Upstream (provider) errors ------------------------------------------------


class UpstreamError(PortwayError):
    """The provider failed in a way the client could not have prevented."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"
    retryable = True


class UpstreamRateLimitError(RateLimitError):
    """The provider answered 429; the router may retry after ``retry_after`` or fail over."""

    default_code = "upstream_rate_limited"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"


class UpstreamUnavailableError(UpstreamError):
    status_code = 503
    default_code = "upstream_unavailable"


class UpstreamOverloadedError(UpstreamUnavailableError, RateLimitError):
    """An overloaded upstream that sent ``retry-after``: still a 503 to the client, but the
    router treats it as a rate limit, pausing the deployment for ``retry_after`` and
    retrying after it, rather than as a failure soon retried."""


class UpstreamAuthError(UpstreamError):
    """Portway's credentials for the provider were refused: a server configuration fault."""

    default_code = "upstream_auth_failed"
    retryable = False


class UpstreamNotFoundError(UpstreamError):
    """The upstream does not know the configured model or path: a configuration fault."""

    default_code = "upstream_not_found"
    retryable = False


class UpstreamBadRequestError(InvalidRequestError):
    """The provider rejected the request as invalid; retrying cannot help."""

    default_code = "upstream_bad_request"


class ServiceUnavailableError(PortwayError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class InternalServerError(PortwayError):
    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"
