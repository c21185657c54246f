"""List query parameters (``limit``, ``order``, ``after``, ``before``) → ``PageRequest``."""

from __future__ import annotations

from starlette.requests import Request

from portway.errors import InvalidRequestError
from portway.store.paging import PageRequest


def query_choice(request: Request, name: str, choices: frozenset[str]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in choices:
        allowed = ", ".join(sorted(choices))
        raise InvalidRequestError(
            f"Invalid value for '{name}': expected one of {allowed}.", param=name
        )
    return value


def page_request(
    request: Request, *, default_limit: int = 20, max_limit: int = 100, before: bool = True
) -> PageRequest:
    params = request.query_params
    raw_limit = params.get("limit")
    limit = default_limit
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= max_limit:
            raise InvalidRequestError(
                f"Invalid value for 'limit': expected an integer between 1 and {max_limit}.",
                param="limit",
            )
        limit = int(raw_limit)
    order = query_choice(request, "order", frozenset({"asc", "desc"})) or "desc"
    return PageRequest(
        limit=limit,
        order=order,  # type: ignore[arg-type]
        after=params.get("after") or None,
        before=(params.get("before") or None) if before else None,
    )
