"""The one tokenizer service: token counts before a call and when a provider reports none.

Contract:
- OpenAI model families are counted exactly with their BPE (``o200k_base`` for gpt-4o,
  gpt-4.1, gpt-5, o-series; ``cl100k_base`` for gpt-4, gpt-3.5, embeddings v3/ada).
- A model may plug in its own tokenizer (``TokenizerService.register``), e.g. a local GGUF
  model's vocabulary.
- Everything else is an estimate: the ``o200k_base`` count times ``estimate_factor``
  (default 1.1, i.e. rounded up by 10%: Claude, Llama and Mistral vocabularies produce a
  few percent more tokens than o200k on English text), marked ``exact=False``.
- Chat prompts add OpenAI's per-message overhead (3 tokens per message, 1 per ``name``,
  3 to prime the reply) and, for ``tools``, the function-definition overhead from OpenAI's
  token counting guide.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson
import tiktoken

from portway.accounting.encodings import load_encoding
from portway.protocol.chat import ChatCompletionRequest, Tool
from portway.protocol.completions import CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest
from portway.protocol.native_responses import NativeResponseRequest
from portway.providers.base import Framing

# Prompts longer than this (characters) are counted in a thread, off the event loop.
OFFLOAD_CHARS = 64_000
# OpenAI bills images per tile; before a call we only know there is one: count low detail.
IMAGE_TOKENS_ESTIMATE = 85
# Characters of message text a counter remembers costs for (``MessageCostCache``).
MESSAGE_CACHE_CHARS = 8_000_000

_O200K_PREFIXES = (
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "gpt-oss",
)
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada")


def encoding_for_model(model: str) -> str | None:
    """The exact encoding of an OpenAI model id (dated and fine-tuned variants too)."""
    base = model.rsplit("/", 1)[-1].removeprefix("ft:").lower()
    if base.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if base.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


class TokenCounter(Protocol):
    """Counts the tokens of a text for one model."""

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...


@runtime_checkable
class FramedCounter(TokenCounter, Protocol):
    """A model's own tokenizer that also knows what its chat template adds."""

    def framing(self) -> Framing: ...


@dataclass(frozen=True, slots=True)
class BPECounter:
    encoding: tiktoken.Encoding
    exact: bool = True

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))


@dataclass(frozen=True, slots=True)
class EstimatingCounter:
    """A model without a known tokenizer: o200k scaled up by a documented factor."""

    encoding: tiktoken.Encoding
    factor: float
    exact: bool = False

    def count(self, text: str) -> int:
        return math.ceil(len(self.encoding.encode(text, disallowed_special=())) * self.factor)


@dataclass(frozen=True, slots=True)
class ToolOverhead:
    """Per-tool token costs from OpenAI's guide (gpt-4o family; older models differ)."""

    function_start: int
    property_start: int = 3
    property_key: int = 3
    enum_start: int = -3
    enum_item: int = 3
    functions_end: int = 12


_TOOLS_O200K = ToolOverhead(function_start=7)
OPENAI_FRAMING = Framing()
_TOOLS_CL100K = ToolOverhead(function_start=10)


def _text_of(content: Any) -> tuple[str, int]:
    """Text of a message's content and the number of non-text parts (images, audio, files)."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    others = 0
    for part in content:
        text = getattr(part, "text", None) or getattr(part, "refusal", None)
        if text is not None:
            texts.append(text)
        else:
            others += 1
    return "".join(texts), others


class MessageCostCache:
    """Token costs of plain-text messages already counted by one tokenizer: a chat client
    resends its whole history every turn, so each call counts only what is new.

    Bounded by the characters its keys hold (oldest entries go first)."""

    def __init__(self, max_chars: int = MESSAGE_CACHE_CHARS) -> None:
        self._costs: dict[tuple[Any, ...], int] = {}
        self._chars = 0
        self._max_chars = max_chars

    @staticmethod
    def key(message: Any) -> tuple[Any, ...] | None:
        """What a message's cost depends on, when it is plain text (None: not cached)."""
        fields = getattr(message, "__dict__", None)
        if not isinstance(fields, dict):
            return None
        content = fields.get("content")
        if not isinstance(content, str) or fields.get("tool_calls"):
            return None
        return (fields.get("role"), content, fields.get("name"), fields.get("tool_call_id"))

    def get(self, key: tuple[Any, ...]) -> int | None:
        return self._costs.get(key)

    def put(self, key: tuple[Any, ...], cost: int) -> None:
        chars = len(key[1])
        if chars > self._max_chars // 16:  # one huge message must not flush the rest
            return
        self._chars += chars
        while self._chars > self._max_chars and self._costs:
            oldest = next(iter(self._costs))
            if self._costs.pop(oldest, None) is not None:
                self._chars -= len(oldest[1])
        self._costs[key] = cost


class ChatTokenCounter:
    """Counts a chat request's prompt tokens as OpenAI bills them."""

    def __init__(
        self,
        counter: TokenCounter,
        tools: ToolOverhead = _TOOLS_O200K,
        framing: Framing = OPENAI_FRAMING,
    ) -> None:
        self.counter = counter
        self._tools = tools
        self.framing = framing
        self._cache = MessageCostCache()

    @property
    def exact(self) -> bool:
        return self.counter.exact

    def count_text(self, text: str) -> int:
        return self.counter.count(text)

    def count_messages(self, messages: Iterable[Any]) -> int:
        # every reply is primed (OpenAI: <|start|>assistant<|message|>)
        return self.framing.per_prompt + sum(map(self.message_cost, messages))

    def message_cost(self, message: Any) -> int:
        """One message's tokens in a prompt (remembered for plain-text messages)."""
        key = MessageCostCache.key(message)
        if key is None:
            return self._count_message(message)
        cost = self._cache.get(key)
        if cost is None:
            cost = self._count_message(message)
            self._cache.put(key, cost)
        return cost

    def _count_message(self, message: Any) -> int:
        count = self.counter.count
        total = self.framing.per_message + count(message.role)
        text, others = _text_of(getattr(message, "content", None))
        total += count(text) + others * IMAGE_TOKENS_ESTIMATE
        name = getattr(message, "name", None)
        if name:
            total += count(name) + 1
        for call in getattr(message, "tool_calls", None) or ():
            total += 3 + count(call.function.name) + count(call.function.arguments)
        tool_call_id = getattr(message, "tool_call_id", None)
        if tool_call_id:
            total += count(tool_call_id)
        return total

    def count_tools(self, tools: Iterable[Tool]) -> int:
        count = self.counter.count
        overhead = self._tools
        total = 0
        any_tool = False
        for tool in tools:
            any_tool = True
            function = tool.function
            total += overhead.function_start
            description = (function.description or "").removesuffix(".")
            total += count(f"{function.name}:{description}")
            properties = (function.parameters or {}).get("properties") or {}
            if properties:
                total += overhead.property_start
                for key, schema in properties.items():
                    total += overhead.property_key
                    schema = schema if isinstance(schema, dict) else {}
                    for item in schema.get("enum") or ():
                        total += overhead.enum_item + count(str(item))
                    if schema.get("enum"):
                        total += overhead.enum_start
                    kind = schema.get("type", "object")
                    if not isinstance(kind, str):
                        kind = orjson.dumps(kind).decode()
                    describe = str(schema.get("description", "")).removesuffix(".")
                    total += count(f"{key}:{kind}:{describe}")
        return total + overhead.functions_end if any_tool else total

    def count_extras(self, request: ChatCompletionRequest) -> int:
        """What a chat prompt costs beyond its messages: tools and a JSON schema."""
        total = 0
        if request.tools:
            total += self.count_tools(request.tools)
        schema = getattr(request.response_format, "json_schema", None)
        if schema is not None and schema.schema_ is not None:
            total += self.counter.count(orjson.dumps(schema.schema_).decode())
        return total

    def count_request(self, request: ChatCompletionRequest) -> int:
        return self.count_messages(request.messages) + self.count_extras(request)


def request_chars(request: ChatCompletionRequest) -> int:
    chars = 0
    for message in request.messages:
        content = getattr(message, "content", None)
        if isinstance(content, str):
            chars += len(content)
        elif content:
            chars += sum(len(getattr(part, "text", "") or "") for part in content)
    return chars


class TokenizerService:
    """Hands out the right ``ChatTokenCounter`` per (provider, model); loads BPEs lazily."""

    def __init__(self, estimate_factor: float = 1.1) -> None:
        self._estimate_factor = estimate_factor
        self._registered: dict[str, TokenCounter] = {}
        self._counters: dict[tuple[str, str], ChatTokenCounter] = {}
        self._loading: dict[str, asyncio.Future[tiktoken.Encoding]] = {}

    def register(self, model: str, counter: TokenCounter) -> None:
        """Use ``counter`` for ``model`` (public or upstream name), e.g. a GGUF tokenizer."""
        self._registered[model] = counter
        self._counters = {k: v for k, v in self._counters.items() if k[1] != model}

    def kind(self, model: str) -> str:
        """Which tokenizer counts ``model``: equal kinds give equal counts."""
        if model in self._registered:
            return f"registered:{model}"
        return encoding_for_model(model) or "estimate"

    def warm(self, models: Iterable[str]) -> None:
        """Start loading the encodings these upstream models need, in threads (no waiting)."""
        names = {encoding_for_model(model) or "o200k_base" for model in models}
        for name in sorted(names):
            if name not in self._loading:
                self._loading[name] = asyncio.ensure_future(asyncio.to_thread(load_encoding, name))

    async def _encoding(self, name: str) -> tiktoken.Encoding:
        future = self._loading.get(name)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(load_encoding, name))
            self._loading[name] = future
        # Shielded: the load is shared, so a caller cancelled while waiting (a client that
        # left) must not cancel it for every later caller.
        return await asyncio.shield(future)

    async def counter(self, provider: str, model: str) -> ChatTokenCounter:
        """The counter for a deployment's upstream model; cached after the first call."""
        key = (provider, model)
        counter = self._counters.get(key)
        if counter is not None:
            return counter
        registered = self._registered.get(model)
        encoding_name = encoding_for_model(model)
        if isinstance(registered, FramedCounter):
            counter = ChatTokenCounter(registered, framing=registered.framing())
        elif registered is not None:
            counter = ChatTokenCounter(registered)
        elif encoding_name is not None:
            tools = _TOOLS_CL100K if encoding_name == "cl100k_base" else _TOOLS_O200K
            counter = ChatTokenCounter(BPECounter(await self._encoding(encoding_name)), tools)
        else:
            encoding = await self._encoding("o200k_base")
            counter = ChatTokenCounter(EstimatingCounter(encoding, self._estimate_factor))
        self._counters[key] = counter
        return counter

    async def count_request(
        self,
        provider: str,
        model: str,
        request: ChatCompletionRequest
        | EmbeddingRequest
        | CompletionRequest
        | NativeResponseRequest,
    ) -> tuple[int, bool]:
        """(prompt tokens, exact?) for a chat, embeddings or text completion request; big
        prompts are counted in a thread."""
        counter = await self.counter(provider, model)
        if isinstance(request, EmbeddingRequest):
            return await self._count_input(counter, request), counter.exact
        if isinstance(request, CompletionRequest):
            return await self._count_prompt(counter, request), counter.exact
        if isinstance(request, NativeResponseRequest):
            text = request.text()
            if len(text) > OFFLOAD_CHARS:
                return await asyncio.to_thread(counter.count_text, text), counter.exact
            return counter.count_text(text), counter.exact
        if request_chars(request) > OFFLOAD_CHARS:
            return await asyncio.to_thread(counter.count_request, request), counter.exact
        return counter.count_request(request), counter.exact

    @staticmethod
    async def _count_prompt(counter: ChatTokenCounter, request: CompletionRequest) -> int:
        """A text completion's prompts (and suffix) counted, per prompt, as sent."""
        texts = request.texts()
        if texts is None:
            return sum(map(len, request.token_prompts()))
        if request.suffix:
            texts = [*texts, *[request.suffix] * len(texts)]  # each prompt gets the suffix
        if sum(len(text) for text in texts) > OFFLOAD_CHARS:
            return await asyncio.to_thread(lambda: sum(map(counter.count_text, texts)))
        return sum(map(counter.count_text, texts))

    @staticmethod
    async def _count_input(counter: ChatTokenCounter, request: EmbeddingRequest) -> int:
        """An embeddings request's input: its texts counted, its token ids as sent."""
        texts = request.texts()
        if texts is None:
            return request.token_ids()
        if sum(len(text) for text in texts) > OFFLOAD_CHARS:
            return await asyncio.to_thread(lambda: sum(map(counter.count_text, texts)))
        return sum(map(counter.count_text, texts))

    async def count_text(self, provider: str, model: str, text: str) -> int:
        counter = await self.counter(provider, model)
        if len(text) > OFFLOAD_CHARS:
            return await asyncio.to_thread(counter.count_text, text)
        return counter.count_text(text)
