"""Applying input guardrails to a request's text: chat messages (text, parts, tool-call
arguments), legacy completion prompts and embedding inputs. A request that changes is a new
request object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portway.guardrails.base import GuardSession
from portway.guardrails.policy import ActivePolicy
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.completions import CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest


def check_text(
    text: str, role: str | None, policies: Sequence[ActivePolicy], session: GuardSession
) -> str:
    for policy in policies:
        if policy.on_input and policy.applies_to(role):
            text = policy.guardrail.check_input(text, policy.mode, session)
    return text


def _message(
    message: dict[str, Any], policies: Sequence[ActivePolicy], session: GuardSession
) -> dict[str, Any]:
    role = message.get("role")
    changed = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        changed["content"] = check_text(content, role, policies, session)
    elif isinstance(content, list):
        changed["content"] = [
            {**part, "text": check_text(part["text"], role, policies, session)}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        changed["tool_calls"] = [_tool_call(call, role, policies, session) for call in calls]
    return changed


def _tool_call(
    call: Any, role: str | None, policies: Sequence[ActivePolicy], session: GuardSession
) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    arguments = check_text(function["arguments"], role, policies, session)
    return {**call, "function": {**function, "arguments": arguments}}


def guard_chat(
    request: ChatCompletionRequest, policies: Sequence[ActivePolicy], session: GuardSession
) -> ChatCompletionRequest:
    body = request.wire_body()
    messages = [_message(message, policies, session) for message in body["messages"]]
    if messages == body["messages"]:
        return request
    guarded = ChatCompletionRequest.from_wire({**body, "messages": messages})
    guarded._default_cap = request.output_cap_is_default
    return guarded


def _prompts(request: CompletionRequest) -> list[str] | None:
    """A completion request's prompts as text (None when they are token ids)."""
    if isinstance(request.prompt, str):
        return [request.prompt]
    if all(isinstance(item, str) for item in request.prompt):
        return list(request.prompt)  # type: ignore[arg-type]
    return None


def guard_completion_request(
    request: CompletionRequest, policies: Sequence[ActivePolicy], session: GuardSession
) -> CompletionRequest:
    prompts = _prompts(request)
    if prompts is None:  # token ids: no text to check
        return request
    checked = [check_text(prompt, "user", policies, session) for prompt in prompts]
    if checked == prompts:
        return request
    value: str | list[str] = checked[0] if isinstance(request.prompt, str) else checked
    guarded = CompletionRequest.from_wire({**request.wire_body(), "prompt": value})
    guarded._default_cap = request.output_cap_is_default
    return guarded


def text_size(request: ChatCompletionRequest | EmbeddingRequest | CompletionRequest) -> int:
    """About how many characters the input checks will scan (to pick where they run)."""
    if isinstance(request, EmbeddingRequest):
        return sum(len(text) for text in request.texts() or ())
    if isinstance(request, CompletionRequest):
        return sum(len(prompt) for prompt in _prompts(request) or ())
    size = 0
    for message in request.wire_body()["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            size += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
        size += sum(len(str(call)) for call in message.get("tool_calls") or ())
    return size


def guard_embedding(
    request: EmbeddingRequest, policies: Sequence[ActivePolicy], session: GuardSession
) -> EmbeddingRequest:
    texts = request.texts()
    if texts is None:  # token ids: no text to check
        return request
    checked = [check_text(text, None, policies, session) for text in texts]
    if checked == texts:
        return request
    value: str | list[str] = checked[0] if isinstance(request.input, str) else checked
    return request.model_copy(update={"input": value})
