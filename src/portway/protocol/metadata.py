"""``metadata`` as every OpenAI object takes it: at most 16 pairs, keys up to 64 characters,
string values up to 512. A violation is a 400 naming the field (``metadata`` or
``metadata.<key>``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_PAIRS = 16
MetadataKey = Annotated[str, Field(max_length=64)]
MetadataText = Annotated[str, Field(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataText], Field(max_length=MAX_PAIRS)]
