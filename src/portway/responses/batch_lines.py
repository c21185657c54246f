"""``/v1/responses`` batch lines: each one whole response, made for the batch's creator.

A line's body is a ``POST /v1/responses`` body; it is prepared and checked as an HTTP
request's is (the same 400s and 404s), run to its end without streaming, and saved
(``store``, default true, so it can be retrieved and chained on later). Its model calls
are made on the batch's terms: ledger endpoint ``batches``, the batch's queue priority
and price factor; the ledger rows' ``request_id`` is the response id, as for any response.
"""

from __future__ import annotations

from typing import Any

from portway.api.wire import parse_model
from portway.batches.endpoints import LEDGER_ENDPOINT, LineCall
from portway.errors import InvalidRequestError
from portway.protocol.responses import CreateResponseRequest
from portway.responses.engine import CallTerms
from portway.responses.service import ResponseService

URL = "/v1/responses"


class ResponseLines:
    """The ``LineHandler`` of ``/v1/responses`` batches."""

    def __init__(self, service: ResponseService) -> None:
        self._service = service

    async def __call__(self, body: dict[str, Any], call: LineCall) -> dict[str, Any]:
        for param in ("stream", "background"):
            if body.get(param):
                raise InvalidRequestError(
                    f"'{param}' is not supported in batches: remove it from the body.",
                    param=param,
                    code="invalid_value",
                )
        request = parse_model(body, CreateResponseRequest)
        job = await self._service.prepare(call.principal, request)
        job.terms = CallTerms(
            endpoint=LEDGER_ENDPOINT, priority=call.priority, price_factor=call.price_factor
        )
        return await self._service.create(job)
