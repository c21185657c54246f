"""``create_app(settings)``: the ASGI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from portway import __version__
from portway.api import (
    admin,
    batches,
    cache_admin,
    chat,
    completions,
    conversations,
    embeddings,
    files,
    health,
    models,
    privacy,
    request_log,
    responses,
    threads,
)
from portway.api.deps import retained
from portway.api.hot_routes import HotRoutesMiddleware, render_exception
from portway.api.middleware import EdgeMiddleware
from portway.api.render import error_response, internal_error
from portway.assistants import router as assistants
from portway.config import Settings
from portway.console import router as console_router
from portway.console.web import STATIC_DIR, Console
from portway.errors import InvalidRequestError, MethodNotAllowedError, NotFoundError, PortwayError
from portway.keys import router as keys_router
from portway.observability.middleware import ObservabilityMiddleware
from portway.providers.registry import ProviderRegistry
from portway.services import Services
from portway.sketch import api as sketch_api
from portway.sketch import page as sketch_page
from portway.vector_stores import router as vector_stores

logger = logging.getLogger(__name__)

# The Swagger UI files vendored in the console's static folder (swagger-ui-dist, npm).
SWAGGER_UI = "5.35.0"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowedError(f"Method {request.method} not allowed."))
    if exc.status_code == 404:
        return error_response(
            NotFoundError(f"Invalid URL ({request.method} {request.url.path}).", code=None)
        )
    if 400 <= exc.status_code < 500:
        return error_response(InvalidRequestError(str(exc.detail)))
    return error_response(internal_error())


async def _error_object(request: Request, exc: Exception) -> Response:
    """Portway errors as their OpenAI error object; anything else as a logged 500."""
    return render_exception(request, exc)


class PortwayApp:
    """The ASGI app uvicorn serves: the edge, the hot routes, then FastAPI for the rest.

    The edge and the hot routes sit outside FastAPI, so a chat completion passes through
    none of Starlette's and FastAPI's own middleware layers.
    """

    def __init__(self, api: FastAPI, outer: ASGIApp) -> None:
        self.api = api
        self._outer = outer

    @property
    def state(self) -> State:
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._outer(scope, receive, send)


async def _swagger_page() -> Response:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Portway API",
        swagger_js_url=f"/ui/static/vendor/swagger-ui-bundle-{SWAGGER_UI}.js",
        swagger_css_url=f"/ui/static/vendor/swagger-ui-{SWAGGER_UI}.css",
        swagger_favicon_url="/ui/static/favicon.svg",
    )


def create_app(settings: Settings, registry: ProviderRegistry | None = None) -> PortwayApp:
    """Build the app; providers are created now and started in the lifespan."""
    services = Services.build(settings, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.close()

    # /docs and /openapi.json describe Portway's own API (admin, usage, request log,
    # health). The OpenAI-compatible endpoints are left out: they read raw bodies (their
    # wire format is OpenAI's own spec, not what FastAPI would infer from the handlers).
    app = FastAPI(
        title="Portway",
        summary="Portway's own API: keys, budgets, usage, request log, cache, health.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served below with the vendored Swagger UI: no CDN, works offline
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    console = Console(services, app)
    app.state.console = console
    # /v1/responses serves zero-retention keys too: their responses are never stored.
    for module in (chat, completions, models, embeddings, responses):
        app.include_router(module.router, include_in_schema=False)
    for module in (health, keys_router, admin, cache_admin, privacy, request_log):
        app.include_router(module.router)
    # The stateful APIs keep content: zero-retention keys are refused there.
    for module in (files, vector_stores, assistants, threads, batches, conversations, sketch_api):
        app.include_router(module.router, dependencies=[Depends(retained)], include_in_schema=False)
    app.include_router(console_router.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_api_route("/docs", _swagger_page, include_in_schema=False)
    # The sketcher's page: no secrets in it (the console's session or a typed key).
    app.include_router(sketch_page.router, include_in_schema=False)
    app.add_exception_handler(PortwayError, _error_object)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _error_object)
    hot_routes = HotRoutesMiddleware(
        app,
        routes={
            ("POST", "/v1/chat/completions"): chat.create_chat_completion,
            ("POST", "/v1/responses"): responses.create_response,
        },
    )
    edge = EdgeMiddleware(
        hot_routes,
        authenticator=lambda: services.authenticator,
        max_body_bytes=settings.max_request_bytes,
        body_limits={"/v1/files": files.upload_body_limit(settings.files.max_bytes)},
        session_auth=console.auth.api_principal,
    )
    observed = ObservabilityMiddleware(edge, finished=lambda: services.observability)
    return PortwayApp(app, observed)
