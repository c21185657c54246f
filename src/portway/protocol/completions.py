"""Wire models for the legacy `POST /v1/completions` (text completions), as OpenAI's spec.

A prompt is a string, a list of strings, a list of token ids or a list of such lists;
each prompt gets ``n`` choices, numbered prompt by prompt (``index = prompt * n + j``).
``max_tokens`` defaults to 16, as OpenAI's does; an explicit ``null`` leaves the cap to
the deployment, like chat's missing cap. Whole answers and stream chunks share one shape
(``text_completion``); a chunk's ``finish_reason`` is null until its choice ends.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import Field, field_validator

from portway.protocol.chat import (
    LogitBias,
    StopSequences,
    StreamOptions,
    UsageDict,
    WireRequest,
)

DEFAULT_MAX_TOKENS = 16

TokenIds = list[int]


class CompletionRequest(WireRequest):
    model: str = Field(min_length=1)
    prompt: str | list[str] | TokenIds | list[TokenIds]
    best_of: int | None = Field(default=None, ge=0, le=20)
    echo: bool | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: LogitBias = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    max_tokens: int | None = Field(default=DEFAULT_MAX_TOKENS, ge=0)
    n: int | None = Field(default=None, ge=1, le=128)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: StopSequences = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and (not value or any(item == [] for item in value)):
            raise ValueError("a prompt must not be an empty list")
        return value

    # Prompts -------------------------------------------------------------------------

    def texts(self) -> list[str] | None:
        """The prompts as strings, or None when the client sent token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(item, str) for item in self.prompt):
            return list(self.prompt)  # type: ignore[arg-type]
        return None

    def token_prompts(self) -> list[list[int]]:
        """The prompts as token-id lists (empty when the client sent text)."""
        if self.texts() is not None:
            return []
        if all(isinstance(item, int) for item in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return [list(item) for item in self.prompt]  # type: ignore[arg-type]

    @property
    def prompt_count(self) -> int:
        texts = self.texts()
        return len(texts) if texts is not None else len(self.token_prompts())

    @property
    def choices_per_prompt(self) -> int:
        return self.n or 1

    @property
    def generations(self) -> int:
        """How many completions the model generates: ``best_of`` (else ``n``) per prompt."""
        return self.prompt_count * max(self.choices_per_prompt, self.best_of or 1)

    # Output cap, stops, usage --------------------------------------------------------

    @property
    def max_output_tokens(self) -> int | None:
        """The output cap per completion (16 unless the client said otherwise)."""
        return self.max_tokens

    @property
    def output_cap_is_default(self) -> bool:
        """The output cap is Portway's default, not the client's (a provider may lower it)."""
        return self._default_cap

    def with_output_cap(self, cap: int) -> CompletionRequest:
        """This request capped at ``cap`` tokens when the client sent ``max_tokens: null``."""
        if self.max_tokens is not None:
            return self
        return self._with_default_cap("max_tokens", cap)


# Responses (plain dicts with types) ------------------------------------------------


class CompletionLogprobsDict(TypedDict, total=False):
    text_offset: list[int]
    token_logprobs: list[float | None]
    tokens: list[str]
    top_logprobs: list[dict[str, float] | None]


class CompletionChoiceDict(TypedDict):
    text: str
    index: int
    logprobs: CompletionLogprobsDict | None
    # None only in a stream chunk whose choice has not ended yet.
    finish_reason: Literal["stop", "length", "content_filter"] | None


class CompletionDict(TypedDict):
    """A ``text_completion`` object: a whole answer or one stream chunk."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoiceDict]
    usage: NotRequired[UsageDict | None]
    system_fingerprint: NotRequired[str | None]
