"""What routers need from a request: the services, the principal, a call context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from portway.pipeline.base import CallContext, ModelRequest
from portway.security.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from portway.services import Services


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def principal_of(request: Request) -> Principal:
    return request.scope.get("state", {}).get("principal", ANONYMOUS)  # type: ignore[no-any-return]


def request_id_of(request: Request) -> str:
    return request.scope["state"]["request_id"]  # type: ignore[no-any-return]


def call_context(request: Request, body: ModelRequest) -> CallContext:
    return CallContext(
        request_id=request_id_of(request),
        principal=principal_of(request),
        request=body,
        request_headers=request.headers,
    )
