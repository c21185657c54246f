"""A cheap prompt-size estimate for routing decisions (no tokenizer on the hot path).

Contract: a ``PromptTokenEstimator`` maps a chat or embeddings request to an approximate
prompt token count. The default counts characters / 4 plus a few tokens of framing per message;
the router takes any other estimator (e.g. the accounting tokenizer) at construction.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from portway.protocol.chat import ChatCompletionRequest, message_text
from portway.protocol.completions import CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest

PromptTokenEstimator = Callable[[ChatCompletionRequest | EmbeddingRequest | CompletionRequest], int]

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators in typical chat templates


def estimate_prompt_tokens(
    request: ChatCompletionRequest | EmbeddingRequest | CompletionRequest,
) -> int:
    """About how many tokens the prompt (messages and tool definitions, the input to embed,
    or a text completion's prompts) will take."""
    if isinstance(request, CompletionRequest):
        prompts = request.texts()
        if prompts is None:
            return sum(map(len, request.token_prompts()))
        return sum(len(text) for text in prompts) // CHARS_PER_TOKEN + len(prompts)
    if isinstance(request, EmbeddingRequest):
        texts = request.texts()
        if texts is None:
            return request.token_ids()
        return sum(len(text) for text in texts) // CHARS_PER_TOKEN + len(texts)
    chars = 0
    for message in request.messages:
        chars += len(message_text(message.content))  # type: ignore[arg-type]
        for call in getattr(message, "tool_calls", None) or ():
            chars += len(call.function.name) + len(call.function.arguments)
    if request.tools:
        chars += len(orjson.dumps([tool.model_dump(exclude_none=True) for tool in request.tools]))
    return chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(request.messages)
