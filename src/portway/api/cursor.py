"""List query parameters (``limit``, ``order``, ``after``, ``before``) → ``PageRequest``,
for every cursor-paginated listing; bad values are 400s worded as OpenAI words them."""

from __future__ import annotations

from starlette.requests import Request

from portway.errors import InvalidRequestError
from portway.store.pagination import PageRequest


def query_choice(request: Request, name: str, choices: frozenset[str]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in choices:
        allowed = ", ".join(f"'{choice}'" for choice in sorted(choices))
        raise InvalidRequestError(
            f"Invalid value for '{name}': expected one of {allowed}, got '{value}'.",
            param=name,
            code="invalid_value",
        )
    return value


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.strip().lstrip("-").isdigit():
        raise InvalidRequestError(
            f"Invalid value for 'limit': expected an integer, got '{raw}'.",
            param="limit",
            code="invalid_value",
        )
    limit = int(raw)
    if not 1 <= limit <= maximum:
        side = "below minimum" if limit < 1 else "above maximum"
        raise InvalidRequestError(
            f"Invalid 'limit': integer {side} value. Expected a value between 1 and "
            f"{maximum}, but got {limit} instead.",
            param="limit",
            code="invalid_value",
        )
    return limit


def page_request(
    request: Request, *, default_limit: int = 20, max_limit: int = 100, before: bool = True
) -> PageRequest:
    """``limit`` (1..``max_limit``), ``order`` (asc|desc, default desc), ``after`` and, when
    the listing takes it, ``before``."""
    params = request.query_params
    order = query_choice(request, "order", frozenset({"asc", "desc"})) or "desc"
    return PageRequest(
        limit=parse_limit(params.get("limit"), default_limit, max_limit),
        order=order,  # type: ignore[arg-type]
        after=params.get("after") or None,
        before=(params.get("before") or None) if before else None,
    )
