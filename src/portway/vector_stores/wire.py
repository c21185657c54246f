"""Wire models of `/v1/vector_stores` (stores, files, file batches, search).

Requests are pydantic models (``extra="allow"``, as every Portway request); responses are
TypedDicts shaped like OpenAI's ``VectorStoreObject``, ``VectorStoreFileObject``,
``VectorStoreFileBatchObject`` and ``VectorStoreSearchResultsPage``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import Discriminator, Field, field_validator, model_validator

from portway.protocol.chat import WireModel
from portway.protocol.metadata import MAX_PAIRS, Metadata, MetadataKey, MetadataText

# Attributes: metadata's limits, with numbers and booleans as values too.
Attributes = Annotated[
    dict[MetadataKey, MetadataText | bool | int | float], Field(max_length=MAX_PAIRS)
]


# Chunking ------------------------------------------------------------------


class StaticChunking(WireModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunking:
        if self.chunk_overlap_tokens * 2 > self.max_chunk_size_tokens:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class AutoChunkingStrategy(WireModel):
    type: Literal["auto"]


class StaticChunkingStrategy(WireModel):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategy = Annotated[AutoChunkingStrategy | StaticChunkingStrategy, Discriminator("type")]


class ExpiresAfter(WireModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


# Requests ------------------------------------------------------------------


class CreateVectorStoreRequest(WireModel):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class UpdateVectorStoreRequest(WireModel):
    name: str | None = Field(default=None, max_length=256)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class CreateVectorStoreFileRequest(WireModel):
    file_id: str = Field(min_length=1)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class UpdateVectorStoreFileRequest(WireModel):
    attributes: Attributes | None


class CreateFileBatchRequest(WireModel):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[CreateVectorStoreFileRequest] | None = Field(
        default=None, min_length=1, max_length=2000
    )
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class ComparisonFilter(WireModel):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: str | bool | int | float | list[str | int | float]


class CompoundFilter(WireModel):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter]


Filter = ComparisonFilter | CompoundFilter


class RankingOptions(WireModel):
    ranker: Literal["none", "auto", "default-2024-11-15", "default_2024_08_21"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class SearchRequest(WireModel):
    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False

    @field_validator("query")
    @classmethod
    def _non_empty(cls, query: str | list[str]) -> str | list[str]:
        queries = [query] if isinstance(query, str) else query
        if not queries or not any(q.strip() for q in queries):
            raise ValueError("the query must not be empty")
        return query

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


# Responses -----------------------------------------------------------------


class FileCountsDict(TypedDict):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStoreDict(TypedDict):
    id: str
    object: Literal["vector_store"]
    created_at: int
    name: str
    description: str | None
    usage_bytes: int
    file_counts: FileCountsDict
    status: Literal["expired", "in_progress", "completed"]
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str] | None
    # Last: Portway renders it after metadata, and only when set.
    expires_after: NotRequired[dict[str, Any]]


class LastErrorDict(TypedDict):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class VectorStoreFileDict(TypedDict):
    id: str
    object: Literal["vector_store.file"]
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: LastErrorDict | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, Any] | None


class FileBatchDict(TypedDict):
    id: str
    object: Literal["vector_store.files_batch"]
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCountsDict


class SearchContentDict(TypedDict):
    type: Literal["text"]
    text: str


class SearchResultDict(TypedDict):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any] | None
    content: list[SearchContentDict]


class SearchResultsPageDict(TypedDict):
    object: Literal["vector_store.search_results.page"]
    search_query: list[str]
    data: list[SearchResultDict]
    has_more: bool
    next_page: str | None
