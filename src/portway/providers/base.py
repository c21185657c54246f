"""The provider boundary: what every model backend implements.

Contract: a provider is built once per deployment from its ``ModelConfig``. ``chat``
returns an OpenAI ``chat.completion`` dict; ``stream`` yields ``chat.completion.chunk``
dicts (the first delta carries the role; the last choice chunk carries the
``finish_reason``; a final usage chunk with empty ``choices`` follows when the provider
knows usage). ``complete_text``/``stream_text`` answer legacy text completions
(``text_completion`` objects, chunks alike); a provider that declares
``Capabilities.completions`` serves them natively, any other gets them mapped onto its
own ``chat``/``stream``. ``respond``/``stream_response`` forward a ``/v1/responses``
create to an upstream with its own Responses API (``Capabilities.responses``: a
deployment with ``responses: native``); others refuse them. Every failure leaves the
provider as a ``PortwayError`` subclass, so the router can tell retryable faults from
client errors. Closing the stream iterator must cancel the upstream call or local
generation at once. A provider declares its ``models[].options`` as a pydantic model
(``Options``: unknown keys are rejected at start-up with their path) and what it is
(``billed``) as class attributes, so nothing else checks a provider's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from portway.config import ModelConfig
from portway.errors import InvalidRequestError
from portway.protocol.chat import (
    AssistantMessage,
    ChatCompletionChunkDict,
    ChatCompletionDict,
    ChatCompletionRequest,
)
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.protocol.native_responses import NativeResponseRequest
from portway.providers.text_via_chat import complete_via_chat, stream_via_chat


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a deployment can do; the router and the validators consult it."""

    chat: bool = True
    tools: bool = True
    json_schema: bool = True
    vision: bool = False
    embeddings: bool = False
    logprobs: bool = False
    context_window: int | None = None
    # The output cap the provider applies when the client sets none (None: the upstream's).
    max_output_tokens: int | None = None
    # Continues a final assistant message instead of answering after it (stream resume).
    prefill: bool = False
    # Serves legacy text completions itself (a raw prompt, no chat template); without it
    # ``/v1/completions`` is mapped to one chat call per prompt (``providers.text_via_chat``).
    completions: bool = False
    # Honours a text completion's ``suffix`` (fill in the middle).
    suffix: bool = False
    # Has its own Responses API, to which `/v1/responses` is forwarded (``responses: native``).
    responses: bool = False

    @classmethod
    def for_remote(
        cls,
        config: ModelConfig,
        *,
        vision: bool,
        embeddings: bool,
        logprobs: bool,
        prefill: bool = False,
        completions: bool = False,
    ) -> Capabilities:
        """A remote upstream's assumed abilities; ``supports_*`` in the config override them."""
        native = completions if config.supports_completions is None else config.supports_completions
        return cls(
            tools=config.supports_tools is not False,
            json_schema=config.supports_json_schema is not False,
            vision=vision if config.supports_vision is None else config.supports_vision,
            embeddings=embeddings,
            logprobs=logprobs,
            context_window=config.context_window,
            max_output_tokens=config.max_output_tokens,
            prefill=prefill if config.prefill is None else config.prefill,
            completions=native,
            suffix=native,  # passed through: the upstream itself decides
            responses=config.responses == "native",
        )


@dataclass(frozen=True, slots=True)
class Continuation:
    """A request that continues a partial answer, and the text it will send again.

    ``echo``: the tail of the partial answer the upstream is expected to repeat (a
    provider that trims the prefix sends it again); the splice drops it once.
    """

    request: ChatCompletionRequest
    echo: str = ""


class ProviderOptions(BaseModel):
    """A provider's ``models[].options``: none unless the provider declares some."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Framing:
    """Tokens a chat format adds: around each message (besides its role's own tokens) and
    once per prompt (priming the reply, a template's preamble). OpenAI's: 3 and 3."""

    per_message: int = 3
    per_prompt: int = 3


class ModelTokenizer(Protocol):
    """A model's own tokenizer, for exact counts before a call (see ``accounting``)."""

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...

    def framing(self) -> Framing:
        """What the model's chat template adds around messages (usable once loaded)."""
        ...


class Provider(ABC):
    """A model backend for one deployment."""

    name: ClassVar[str]
    # The type of ``models[].options`` for this provider (validated at start-up).
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    # Whether calls cost money per token: a deployment of an unbilled provider (a model
    # run on this machine) without a configured price costs 0, not a built-in price.
    billed: ClassVar[bool] = True
    # Whether it runs its model inside the Portway process (weights in memory): with
    # `--workers N` such deployments run once, in the model host (``processes.model_host``).
    hosted: ClassVar[bool] = False

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.options: ProviderOptions = self.Options.model_validate(config.options)

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    async def start(self) -> None:
        """Acquire resources (connection pools, model weights); called once at start-up."""

    async def close(self) -> None:
        """Release resources; called once at shutdown."""

    def tokenizer(self) -> ModelTokenizer | None:
        """The model's own tokenizer when the provider has it (local models do)."""
        return None

    @property
    def default_output_cap(self) -> int | None:
        """The output cap this kind of model gets when its ``max_output_tokens`` is unset.

        None: ``accounting.default_max_output_tokens``. Whatever it is, the router sends it
        upstream and the budget hold assumes it (``Deployment.output_cap``).
        """
        return None

    async def ready(self) -> bool:
        """Whether the provider can serve now (used by ``/health/ready``)."""
        return True

    def continuation(self, request: ChatCompletionRequest, partial: str) -> Continuation:
        """``request`` asking to continue ``partial`` as the final assistant message."""
        if not partial:
            return Continuation(request)
        prefix = AssistantMessage(role="assistant", content=partial)
        return Continuation(request.model_copy(update={"messages": [*request.messages, prefix]}))

    @abstractmethod
    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict: ...

    @abstractmethod
    def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunkDict]: ...

    async def complete_text(self, request: CompletionRequest) -> CompletionDict:
        """A legacy text completion; without native support, one chat call per prompt."""
        return await complete_via_chat(self.chat, request, self.config.name)

    def stream_text(self, request: CompletionRequest) -> AsyncIterator[CompletionDict]:
        """A streamed text completion; without native support, mapped from a chat stream."""
        return stream_via_chat(self.stream, request, self.config.name)

    async def respond(self, request: NativeResponseRequest) -> dict[str, Any]:
        """A Response from the upstream's own Responses API (``Capabilities.responses``)."""
        raise self._no_responses()

    def stream_response(self, request: NativeResponseRequest) -> AsyncIterator[dict[str, Any]]:
        """The upstream's Response stream events, each a dict with its ``type``."""
        raise self._no_responses()

    def _no_responses(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"The model `{self.config.name}` has no native Responses API.",
            param="model",
            code="model_not_supported",
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponseDict:
        raise InvalidRequestError(
            f"The model `{self.config.name}` does not support embeddings.",
            param="model",
            code="model_not_supported",
        )
