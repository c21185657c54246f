"""Privacy and audit admin API (master key only).

`DELETE /v1/admin/users/{user}/data`, `GET|PUT /v1/admin/teams/{team}` (retention),
`POST /v1/admin/retention/purge`, `GET /v1/admin/audit` (paginated), and
`GET /v1/admin/audit/verify`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import admin_services, principal_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError
from portway.protocol.admin import TeamPolicySet
from portway.retention import Retention
from portway.services import Services

router = APIRouter()
MAX_PAGE = 1000


@router.delete("/v1/admin/users/{user}/data")
async def delete_user_data(request: Request, user: str) -> Response:
    services = admin_services(request)
    if not user.strip():
        raise InvalidRequestError("The user id must not be empty.", param="user")
    summary = await services.privacy.delete_user_data(user, principal_of(request))
    return JSONResponse(summary)


def _team_json(team: str, retention: str | None, services: Services) -> dict[str, object]:
    default = services.settings.privacy.retention
    return {
        "object": "portway.team",
        "id": team,
        "retention": Retention.of(retention).label if retention else None,
        "effective_retention": Retention.of(retention or default).label,
    }


@router.get("/v1/admin/teams/{team}")
async def retrieve_team(request: Request, team: str) -> Response:
    services = admin_services(request)
    policy = await services.privacy.teams.get(team)
    return JSONResponse(_team_json(team, policy.retention if policy else None, services))


@router.put("/v1/admin/teams/{team}")
@router.post("/v1/admin/teams/{team}")
async def set_team(request: Request, team: str) -> Response:
    services = admin_services(request)
    body = await read_body(request, TeamPolicySet)
    policy = await services.privacy.teams.set(team, body.retention)  # type: ignore[arg-type]
    services.accounting.keys.forget()  # the team's keys pick the new retention up now
    await services.audit.record(
        "team.update", principal_of(request), team, {"retention": policy.retention}
    )
    return JSONResponse(_team_json(team, policy.retention, services))


@router.post("/v1/admin/retention/purge")
async def purge(request: Request) -> Response:
    services = admin_services(request)
    counts = await services.privacy.purge()
    await services.audit.record("retention.purge", principal_of(request), None, counts)
    return JSONResponse({"object": "portway.retention.purge", "deleted": counts})


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InvalidRequestError(f"{name} must be a non-negative integer.", param=name)
    return int(raw)


@router.get("/v1/admin/audit")
async def list_audit(request: Request) -> Response:
    """Records in sequence order; ``after`` (a seq) pages on, ``order=desc`` newest first
    (then ``before`` pages on)."""
    services = admin_services(request)
    params = request.query_params
    limit = min(max(_int(request, "limit", 100), 1), MAX_PAGE)
    descending = params.get("order", "asc") == "desc"
    before = _int(request, "before", 0) or None
    records = await services.audit.repository.page(
        _int(request, "after", 0),
        limit + 1,
        kind=params.get("kind") or None,
        action=params.get("action") or None,
        descending=descending,
        before=before,
    )
    page = records[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": [record.as_json() for record in page],
            "first_id": page[0].seq if page else None,
            "last_id": page[-1].seq if page else None,
            "has_more": len(records) > limit,
        }
    )


@router.get("/v1/admin/audit/verify")
async def verify_audit(request: Request) -> Response:
    services = admin_services(request)
    await services.audit.flush()
    report = await services.audit.verify()
    return JSONResponse({"object": "portway.audit.verification", **report.as_json()})
