"""A `/v1/responses` create request forwarded as-is to an upstream with its own Responses
API (a deployment with ``responses: native``), and the usage it answers with.

The client's JSON body is kept whole; only ``model`` is replaced by the deployment's
upstream model when it is sent. Response usage (``input_tokens``, ``output_tokens``,
``input_tokens_details.cached_tokens``) is read in the chat shape the accounting stages
share (``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NativeResponseRequest:
    """The client's create body, validated by Portway, to be forwarded unchanged."""

    body: Mapping[str, Any]
    model: str
    max_output_tokens: int | None
    stream: bool
    # What the accounting stages ask of every generating request.
    n: None = None
    include_usage: bool = True

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NativeResponseRequest:
        cap = body.get("max_output_tokens")
        return cls(
            body=body,
            model=str(body["model"]),
            max_output_tokens=cap if isinstance(cap, int) else None,
            stream=body.get("stream") is True,
        )

    def with_output_cap(self, cap: int) -> NativeResponseRequest:
        """This request capped at ``cap`` output tokens when the client set no cap itself, so
        the upstream never writes more than the budget hold assumed."""
        if self.max_output_tokens is not None:
            return self
        return NativeResponseRequest(
            body={**self.body, "max_output_tokens": cap},
            model=self.model,
            max_output_tokens=cap,
            stream=self.stream,
        )

    def upstream_body(self, upstream_model: str) -> dict[str, Any]:
        """The body sent upstream: the client's, with the upstream's model id."""
        return {**self.body, "model": upstream_model}

    def text(self) -> str:
        """What a tokenizer counts as this request's prompt: its instructions and input."""
        parts = [self.body.get("instructions"), self.body.get("input")]
        return "\n".join(part if isinstance(part, str) else _texts(part) for part in parts)


def _texts(value: Any) -> str:
    """Every string inside a JSON value, joined (a structured input's text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "\n".join(_texts(item) for item in value.values())
    if isinstance(value, list):
        return "\n".join(_texts(item) for item in value)
    return ""


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Response's usage in the chat shape the ledger, limits and gates read."""
    if not isinstance(usage, Mapping):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    details = usage.get("input_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
