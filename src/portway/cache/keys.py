"""Cache keys: a canonical hash of everything in a chat request that can change the answer.

Contract: two requests get the same ``exact`` digest exactly when they agree on the
model, the namespace and every field that affects the output (messages, tools,
sampling, limits, formats, and unknown extra fields, which are kept to be safe).
Fields that only steer delivery or bookkeeping (``stream``, ``stream_options``,
``user``, ``metadata``, ``store``, ...) are left out, and spellings with one meaning
are folded together (``max_tokens``/``max_completion_tokens``, ``stop: "x"``/``["x"]``,
``n: 1``/absent). The ``context`` digest is the same hash without the last message:
the semantic cache compares last user messages only within one context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from portway.protocol.chat import ChatCompletionRequest, UserMessage, message_text

# Delivery and bookkeeping fields: the same answer whatever their value.
NON_SEMANTIC_FIELDS = frozenset(
    {
        "model",  # replaced by the public model name the call resolved to
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
    }
)
_DIGEST_BYTES = 16


@dataclass(frozen=True, slots=True)
class EntryKey:
    """Where one cached completion lives: namespace and model are kept for purges."""

    namespace: str
    model: str
    digest: str

    @property
    def text(self) -> str:
        # Quoting keeps ':' and glob characters out of the parts, so a backend can
        # select a namespace or model by prefix or pattern.
        return f"{quote(self.namespace, safe='')}:{quote(self.model, safe='')}:{self.digest}"


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """The exact key, plus what the semantic cache needs when the last message is a user's."""

    exact: EntryKey
    context: str
    last_user_text: str | None


def canonical_params(request: ChatCompletionRequest) -> dict[str, Any]:
    """The output-affecting fields of ``request`` as plain JSON data, spellings folded."""
    params = request.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=NON_SEMANTIC_FIELDS
    )
    max_tokens = params.pop("max_tokens", None)
    if max_tokens is not None:
        params.setdefault("max_completion_tokens", max_tokens)
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    if params.get("n") == 1:
        del params["n"]
    return params


def _digest(*parts: Any) -> str:
    payload = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=_DIGEST_BYTES).hexdigest()


def request_keys(request: ChatCompletionRequest, model: str, namespace: str) -> RequestKeys:
    params = canonical_params(request)
    exact = EntryKey(namespace, model, _digest(namespace, model, params))
    last = request.messages[-1]
    if not isinstance(last, UserMessage):
        return RequestKeys(exact, "", None)
    params["messages"] = params["messages"][:-1]
    context = _digest(namespace, model, params)
    return RequestKeys(exact, context, message_text(last.content))
