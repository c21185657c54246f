"""What routers need from a request: the services, the principal, a call context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from portway.errors import AuthenticationError, PermissionDeniedError
from portway.pipeline.base import CallContext, ModelRequest
from portway.privacy.stage import zero_retention_error
from portway.security.principal import Principal

if TYPE_CHECKING:
    from portway.services import Services


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def principal_of(request: Request) -> Principal:
    """The caller the edge authenticated; a request it never saw has no rights (fail closed)."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise AuthenticationError("This request was not authenticated.")
    return principal


def admin_services(request: Request) -> Services:
    """The services, for the master key only (the admin API)."""
    if not principal_of(request).is_admin:
        raise PermissionDeniedError(
            "You have insufficient permissions for this operation: it needs the master key."
        )
    return services_of(request)


def retained(request: Request) -> None:
    """Stateful APIs store content: zero-retention keys get 400 ``zero_retention``."""
    if principal_of(request).retention.zero:
        raise zero_retention_error(
            "files, vector stores, assistants, threads, conversations and batches "
            "are not available to it"
        )


def request_id_of(request: Request) -> str:
    return request.scope["state"]["request_id"]  # type: ignore[no-any-return]


def call_context(request: Request, body: ModelRequest) -> CallContext:
    principal = principal_of(request)  # first: an unauthenticated request goes no further
    return CallContext(
        request_id=request_id_of(request),
        principal=principal,
        request=body,
        request_headers=request.headers,
    )
