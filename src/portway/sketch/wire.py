"""Wire models of `/v1/sketches` (requests: pydantic, ``extra="allow"``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from portway.sketch.graph import MAX_NODES

_WIRE = ConfigDict(extra="allow")


class SketchOptions(BaseModel):
    model_config = _WIRE

    # Ask up to 3 clarifying questions first (answered with POST .../answers).
    clarify: bool = False
    max_nodes: int = Field(default=12, ge=2, le=MAX_NODES)


class CreateSketchRequest(BaseModel):
    model_config = _WIRE

    description: str = Field(min_length=1, max_length=8000)
    model: str | None = Field(default=None, min_length=1)
    options: SketchOptions = Field(default_factory=SketchOptions)
    metadata: dict[str, str] | None = None


class ReviseSketchRequest(BaseModel):
    model_config = _WIRE

    message: str = Field(min_length=1, max_length=4000)
    node_id: str | None = Field(default=None, min_length=1, max_length=64)


class AnswerSketchRequest(BaseModel):
    model_config = _WIRE

    answers: list[str] = Field(min_length=1, max_length=3)
