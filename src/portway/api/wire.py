"""Reading request bodies into wire models; every failure becomes a 400 naming the param."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from portway.errors import InvalidRequestError
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.completions import CompletionRequest

WireT = TypeVar("WireT", bound=BaseModel)

# pydantic puts union branches and discriminator tags into error locations; they are
# not fields, so they are left out of the `param` a client sees.
_NOT_A_FIELD = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def param_from_location(loc: tuple[int | str, ...]) -> str | None:
    """OpenAI-style param path, e.g. ``messages[0].content``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _NOT_A_FIELD or "[" in part or "=" in part:
            continue
        else:
            text += f".{part}" if text else part
    return text or None


def validation_error(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    param = param_from_location(tuple(first["loc"]))
    # A union's scalar branch fails first (``input``: a string or a list of items); an
    # error deeper inside the same field (``input[0].role``) says what is wrong.
    for error in errors[1:]:
        deeper = param_from_location(tuple(error["loc"]))
        if param and deeper and deeper.startswith(param + "["):
            first, param = error, deeper
    if first["type"] == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        message = f"Invalid value for '{param}': {first['msg']}."
    return InvalidRequestError(message, param=param, code="invalid_value")


def parse_json(body: bytes) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    return data


def parse_model(data: dict, model: type[WireT]) -> WireT:
    try:
        if model is ChatCompletionRequest:  # the hot path keeps the body for pass-through
            return ChatCompletionRequest.from_wire(data)  # type: ignore[return-value]
        if model is CompletionRequest:  # passed through to native completions upstreams
            return CompletionRequest.from_wire(data)  # type: ignore[return-value]
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_body(request: Request, model: type[WireT]) -> WireT:
    """Parse and validate the JSON body of ``request`` as ``model`` (strict types, as OpenAI)."""
    return parse_model(parse_json(await request.body()), model)
