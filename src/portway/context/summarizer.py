"""The summarizer: folds turns into a running summary with a model Portway serves.

Contract: each call goes through the one door (``ModelClient``) as the caller it works
for (its limits and budgets; the operator's choice of model, so its list of models does
not apply), with the caller's request id and the ledger endpoint ``context.summarize``;
what it cost is returned so the caller's own ledger row can carry it. A summarizer call
is never fitted by the context stage itself (recursion guard): it asks for ``off`` by
header and its endpoint is one the stage leaves alone (``INTERNAL_PREFIX``).
"""

from __future__ import annotations

from dataclasses import dataclass

from portway.context.policy import CONTEXT_HEADER
from portway.errors import UpstreamError
from portway.pipeline.base import CallContext
from portway.pipeline.client import ModelClient, for_operator_model
from portway.protocol.chat import ChatCompletionRequest

ENDPOINT = "context.summarize"
# Calls the context stage makes for itself: never fitted again.
INTERNAL_PREFIX = "context."

INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an assistant. "
    "Write the updated summary: keep every fact, name, number, decision, tool result and "
    "open question a later reply may need; drop pleasantries. Write plain prose in the "
    "conversation's language. Answer with the summary only."
)


@dataclass(frozen=True, slots=True)
class Folded:
    summary: str
    cost_nanos: int
    input_tokens: int = 0
    output_tokens: int = 0


def summary_prompt(previous: str | None, transcript: str) -> str:
    earlier = previous if previous else "(nothing yet)"
    return f"Summary so far:\n{earlier}\n\nNew turns:\n{transcript}\n\nThe updated summary:"


class Summarizer:
    def __init__(self, models: ModelClient) -> None:
        self._models = models

    async def fold(
        self,
        model: str,
        previous: str | None,
        transcript: str,
        max_tokens: int,
        parent: CallContext,
    ) -> Folded:
        """``previous`` summary plus the ``transcript`` of newer turns, as one summary."""
        request = ChatCompletionRequest.model_validate(
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": INSTRUCTIONS},
                    {"role": "user", "content": summary_prompt(previous, transcript)},
                ],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
        )
        ctx = self._models.context(
            request,
            principal=for_operator_model(parent.principal),
            request_id=parent.request_id,
            endpoint=ENDPOINT,
            headers={CONTEXT_HEADER: "off"},
        )
        result = await self._models.call(ctx)
        choices = result.get("choices") or []  # type: ignore[union-attr]
        text = (choices[0].get("message") or {}).get("content") if choices else None
        if not isinstance(text, str) or not text.strip():
            raise UpstreamError(f"The summarizer model '{model}' returned no summary.")
        usage = result.get("usage") or {}  # type: ignore[union-attr]
        return Folded(
            text.strip(),
            ctx.cost_nanos,
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )
