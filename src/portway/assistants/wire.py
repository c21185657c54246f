"""Wire models of ``/v1/assistants``: create and modify requests, the assistant object.

Fields in the order of OpenAI's spec (``CreateAssistantRequest``, ``AssistantObject``);
the tool, tool-resource and response-format types are shared with runs
(``protocol.assistants``).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import Field

from portway.protocol.assistants import (
    AssistantTool,
    ResponseFormatOption,
    ToolResources,
)
from portway.protocol.chat import WireModel
from portway.protocol.metadata import Metadata


class CreateAssistantRequest(WireModel):
    model: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    reasoning_effort: str | None = None
    tools: list[AssistantTool] = Field(default_factory=list, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    response_format: ResponseFormatOption | None = None


class ModifyAssistantRequest(WireModel):
    model: str | None = Field(default=None, min_length=1)
    reasoning_effort: str | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[AssistantTool] | None = Field(default=None, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    response_format: ResponseFormatOption | None = None


class AssistantObject(TypedDict):
    id: str
    object: Literal["assistant"]
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: Any
    reasoning_effort: NotRequired[str | None]
