"""Wire models for `POST /v1/embeddings`."""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import Field

from portway.protocol.chat import WireModel


class EmbeddingRequest(WireModel):
    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def texts(self) -> list[str] | None:
        """The inputs as strings, or None when the client sent token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return list(self.input)  # type: ignore[arg-type]
        return None

    def token_ids(self) -> int:
        """How many token ids the client sent (0 when it sent text)."""
        if isinstance(self.input, str) or self.texts() is not None:
            return 0
        return sum(len(item) if isinstance(item, list) else 1 for item in self.input)

    @property
    def max_output_tokens(self) -> int:
        """Embeddings generate no tokens: the output a limit or budget must allow is 0."""
        return 0


class EmbeddingDict(TypedDict):
    object: Literal["embedding"]
    embedding: list[float] | str
    index: int


class EmbeddingUsageDict(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponseDict(TypedDict):
    object: Literal["list"]
    data: list[EmbeddingDict]
    model: str
    usage: EmbeddingUsageDict
