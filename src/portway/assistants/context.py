"""The chat request for a run's next model call, built from stored state.

Contract: the prompt is the run's instructions (system), the thread's messages that came
before the run, then what the run did so far (its messages, its tool calls and their
outputs, in step order). ``truncation_strategy`` applies to the thread's messages:
``last_messages`` keeps the newest N, ``auto`` drops the oldest until the prompt fits
both the model's context window (minus room for the answer) and what is left of the
run's ``max_prompt_tokens``; ``summarize`` (a Portway extension) sends them all and lets
the context stage replace the oldest by a summary kept with the thread
(``Prompt.context_strategy``). ``build`` returns ``None`` when the prompt cannot fit in
``max_prompt_tokens`` (the run ends ``incomplete``). A forced ``tool_choice`` applies
until the run has called a tool (OpenAI: "must call one or more tools before responding"),
and after ``ToolLimits.max_rounds`` tool rounds the model may call none; tool outputs enter
the prompt cut to ``ToolLimits.max_output_chars`` (see ``tool_policy``), and when the run's
own part overflows the window, the outputs of all tool rounds but the newest are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portway.accounting.tokenizer import (
    OFFLOAD_CHARS,
    ChatTokenCounter,
    TokenizerService,
    request_chars,
)
from portway.assistants.tool_policy import ToolLimits
from portway.assistants.tools import chat_tool_choice, chat_tools
from portway.context.window import window_of
from portway.protocol.chat import ChatCompletionRequest
from portway.routing.catalog import ModelCatalog
from portway.store.models.assistants import MessageRow, RunRow, RunStepRow


@dataclass(frozen=True, slots=True)
class Prompt:
    request: ChatCompletionRequest
    dropped_messages: int = 0
    prompt_tokens: int | None = None
    # The context stage's strategy for the call (None: the group's, as for any call).
    context_strategy: str | None = None


def message_text(content: Sequence[dict[str, Any]]) -> str:
    """The text of a stored message's content parts (other parts are left out)."""
    return "\n".join(part["text"]["value"] for part in content if part.get("type") == "text")


def _chat_message(message: MessageRow) -> dict[str, Any] | None:
    if message.role == "assistant":
        text = message_text(message.content)
        return {"role": "assistant", "content": text} if text else None
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if part.get("type") == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif part.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
    if not parts:
        return None
    if all(part["type"] == "text" for part in parts):
        return {"role": "user", "content": "\n".join(part["text"] for part in parts)}
    return {"role": "user", "content": parts}


ELIDED_OUTPUT = "[earlier tool output left out to fit the context window]"


def _run_messages(
    steps: Sequence[RunStepRow],
    messages: dict[str, MessageRow],
    limits: ToolLimits,
    *,
    elide_earlier: bool = False,
) -> list[dict[str, Any]]:
    """What the run did so far, as the model must see it again (with ``elide_earlier``,
    the outputs of all tool rounds but the newest are left out)."""
    newest = max((i for i, step in enumerate(steps) if step.type == "tool_calls"), default=-1)
    out: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        if step.type == "message_creation":
            message = messages.get(step.step_details["message_creation"]["message_id"])
            if message is not None and message.status != "in_progress":
                chat = _chat_message(message)
                if chat is not None:
                    out.append(chat)
            continue
        calls = step.model_calls
        if not calls:
            continue
        out.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                    for call in calls
                ],
            }
        )
        for call in calls:
            if call.get("output") is not None:
                elided = elide_earlier and index < newest
                content = ELIDED_OUTPUT if elided else limits.clip(call["output"])
                out.append({"role": "tool", "tool_call_id": call["id"], "content": content})
    return out


class ContextBuilder:
    """Builds the next model call of a run; counts tokens with the model's tokenizer."""

    def __init__(
        self,
        catalog: ModelCatalog,
        tokenizer: TokenizerService,
        default_output_tokens: int,
        tool_limits: ToolLimits,
    ) -> None:
        self._catalog = catalog
        self._tokenizer = tokenizer
        self._default_output_tokens = default_output_tokens
        self._tool_limits = tool_limits

    async def build(
        self,
        run: RunRow,
        history: Sequence[MessageRow],
        steps: Sequence[RunStepRow],
        *,
        remaining_prompt: int | None,
        remaining_completion: int | None,
    ) -> Prompt | None:
        head = [{"role": "system", "content": run.instructions}] if run.instructions else []
        prior = [
            chat
            for message in history
            if message.run_id != run.id and message.status != "in_progress"
            for chat in (_chat_message(message),)
            if chat is not None
        ]
        strategy = run.truncation_strategy or {"type": "auto"}
        if strategy.get("type") == "summarize":
            own = {message.id: message for message in history if message.run_id == run.id}
            tail = _run_messages(steps, own, self._tool_limits)
            rounds = sum(1 for step in steps if step.type == "tool_calls")
            request = self._request(run, [*head, *prior, *tail], remaining_completion, rounds)
            return Prompt(request, context_strategy="summarize")
        dropped = 0
        if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
            keep = int(strategy["last_messages"])
            dropped = max(0, len(prior) - keep)
            prior = prior[dropped:]
        own = {message.id: message for message in history if message.run_id == run.id}
        tail = _run_messages(steps, own, self._tool_limits)
        rounds = sum(1 for step in steps if step.type == "tool_calls")
        request = self._request(run, [*head, *prior, *tail], remaining_completion, rounds)

        window_limit = self.window_limit(run.model, remaining_completion)
        limits = [limit for limit in (remaining_prompt, window_limit) if limit is not None]
        if not limits:
            return Prompt(request, dropped)
        limit = min(limits)
        counter = await self.counter(run.model)
        costs, fixed = await _count(counter, request, len(head), len(prior))
        total = fixed + sum(costs)
        first = 0
        if strategy.get("type") != "last_messages":
            # Keep at least the newest thread message: it is what the run answers.
            while total > limit and first < len(costs) - 1:
                total -= costs[first]
                first += 1
            if first:
                dropped += first
                messages = request.messages
                request = request.model_copy(
                    update={"messages": messages[: len(head)] + messages[len(head) + first :]}
                )
        if total > limit and rounds > 1:
            # The run's own part alone overflows: earlier tool outputs make way.
            kept = prior[first:]
            tail = _run_messages(steps, own, self._tool_limits, elide_earlier=True)
            request = self._request(run, [*head, *kept, *tail], remaining_completion, rounds)
            costs, fixed = await _count(counter, request, len(head), len(kept))
            total = fixed + sum(costs)
        if remaining_prompt is not None and total > remaining_prompt:
            return None
        return Prompt(request, dropped, total)

    def _request(
        self,
        run: RunRow,
        messages: list[dict[str, Any]],
        remaining_completion: int | None,
        tool_rounds: int,
    ) -> ChatCompletionRequest:
        body: dict[str, Any] = {
            "model": run.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        tools = chat_tools(run.tools)
        if tools:
            body["tools"] = tools
            choice = self._tool_limits.choice(run.tool_choice, tool_rounds)
            if choice is not None:
                body["tool_choice"] = chat_tool_choice(choice)
            body["parallel_tool_calls"] = run.parallel_tool_calls
        optional = {
            "temperature": run.temperature,
            "top_p": run.top_p,
            "max_completion_tokens": remaining_completion,
            "response_format": run.response_format if run.response_format != "auto" else None,
            "reasoning_effort": run.reasoning_effort,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return ChatCompletionRequest.model_validate(body)

    def window_limit(self, model: str, remaining_completion: int | None) -> int | None:
        """Prompt room in the smallest context window of the model's deployments."""
        if model not in self._catalog:
            return None
        windows = [
            window for deployment in self._catalog.group(model) if (window := window_of(deployment))
        ]
        if not windows:
            return None
        window = min(windows)
        room_for_answer = min(remaining_completion or self._default_output_tokens, window // 2)
        return window - room_for_answer

    async def count(self, model: str, request: ChatCompletionRequest) -> int:
        """The prompt tokens of ``request`` with ``model``'s tokenizer (big ones in a thread)."""
        counter = await self.counter(model)
        if request_chars(request) > OFFLOAD_CHARS:
            return await asyncio.to_thread(counter.count_request, request)
        return counter.count_request(request)

    async def counter(self, model: str) -> ChatTokenCounter:
        deployment = self._catalog.group(model)[0] if model in self._catalog else None
        if deployment is None:
            return await self._tokenizer.counter("openai", model)
        config = deployment.config
        return await self._tokenizer.counter(config.provider, config.upstream_model)


async def _count(
    counter: ChatTokenCounter, request: ChatCompletionRequest, head: int, prior: int
) -> tuple[list[int], int]:
    """Tokens of each thread message, and of everything else in the prompt."""

    def count() -> tuple[list[int], int]:
        messages = request.messages
        costs = [counter.message_cost(m) for m in messages[head : head + prior]]
        fixed = counter.count_messages([*messages[:head], *messages[head + prior :]])
        if request.tools:
            fixed += counter.count_tools(request.tools)
        return costs, fixed

    chars = sum(len(str(getattr(m, "content", "") or "")) for m in request.messages)
    if chars > OFFLOAD_CHARS:
        return await asyncio.to_thread(count)
    return count()
