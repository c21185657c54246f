"""Liveness and readiness probes (no authentication: load balancers call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import services_of
from portway.api.render import JSONResponse
from portway.assistants.code_interpreter import CodeInterpreterTool

router = APIRouter()


@router.get("/health/live")
async def live() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    """Ready when a deployment is and no shutdown has begun (503 ``draining`` from SIGTERM on).

    code_interpreter's state (``off`` with the reason when no sandbox boundary could be
    set up) is reported but does not make Portway unready."""
    services = services_of(request)
    if services.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    deployments = await services.catalog.ready()
    is_ready = any(deployments.values())
    code_interpreter = services.builtin_tools.get(CodeInterpreterTool.type)
    tools = {
        CodeInterpreterTool.type: code_interpreter.status()
        if isinstance(code_interpreter, CodeInterpreterTool)
        else {"status": "disabled"}
    }
    return JSONResponse(
        {"status": "ok" if is_ready else "unavailable", "deployments": deployments, "tools": tools},
        status_code=200 if is_ready else 503,
    )


@router.get("/health/deployments")
async def deployments(request: Request) -> Response:
    """Breaker state and health of every deployment (no secrets, no upstream URLs)."""
    return JSONResponse(await services_of(request).router.health_report())


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition (no authentication, like the health probes)."""
    services = services_of(request)
    body = await services.metrics.render(
        services.accounting.gate.stats, services.router.health_report
    )
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
