"""A deterministic "semantic" embedding provider: synonyms share a dimension.

Words of one concept (car/automobile/vehicle, wheel/tyre/tire, ...) map to the same
axis, so texts about the same thing in different words are close, which full-text
ranking alone cannot see. ``options: {fail: true}`` makes every call fail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from portway.errors import InvalidRequestError, UpstreamUnavailableError
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.providers.base import Capabilities, Provider, ProviderOptions

CONCEPTS: dict[str, int] = {
    **dict.fromkeys(["car", "cars", "automobile", "vehicle", "vehicles"], 0),
    **dict.fromkeys(["wheel", "wheels", "tyre", "tyres", "tire", "tires"], 1),
    **dict.fromkeys(["banana", "bananas", "fruit", "fruits", "apple"], 2),
    **dict.fromkeys(["money", "refund", "reimbursement", "payment"], 3),
}
DIMENSIONS = 8


def concept_vector(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        if word in CONCEPTS:
            vector[CONCEPTS[word]] += 1.0
    vector[-1] = 0.01  # never the zero vector
    return vector


class ConceptOptions(ProviderOptions):
    fail: bool = False  # every call fails as an unreachable upstream would


class ConceptEmbedder(Provider):
    name = "concepts"
    Options = ConceptOptions
    options: ConceptOptions

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(chat=False, tools=False, json_schema=False, embeddings=True)

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        raise InvalidRequestError("embeddings only")

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        raise InvalidRequestError("embeddings only")
        yield  # pragma: no cover

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponseDict:
        if self.options.fail:
            raise UpstreamUnavailableError("the embedding upstream is down")
        texts = request.texts() or []
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": concept_vector(text)}
                for i, text in enumerate(texts)
            ],
            "model": request.model,
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
