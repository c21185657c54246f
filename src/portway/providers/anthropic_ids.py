"""Tool-call ids ⇄ Anthropic ``tool_use`` ids, which must match ``^[a-zA-Z0-9_-]+$``.

Contract: ``to_anthropic_id`` is a pure function, so the same history maps the same way
in every request with no state kept between requests. A conforming id passes unchanged;
any other (``functions.get_weather:0``, as some OpenAI-compatible servers write them)
has each other character replaced by ``_`` and a short hash of the whole id appended,
so ids that differ only in replaced characters stay distinct. ``ToolIds`` remembers
what one request mapped, so an answer that names a mapped id gives the client its own
id back; ids Anthropic makes up itself (``toolu_...``) pass as they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# One character class, no repetition around it: linear on any input.
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")
_DIGEST_BYTES = 6


def to_anthropic_id(call_id: str) -> str:
    """``call_id`` in Anthropic's id alphabet: unchanged when it already conforms."""
    if call_id and _NOT_ALLOWED.search(call_id) is None:
        return call_id
    digest = hashlib.blake2s(call_id.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()
    return f"{_NOT_ALLOWED.sub('_', call_id)}_{digest}"


@dataclass(slots=True)
class ToolIds:
    """The tool-call ids one request had to map: Anthropic's form → the client's."""

    originals: dict[str, str] = field(default_factory=dict)

    def to_anthropic(self, call_id: str) -> str:
        mapped = to_anthropic_id(call_id)
        if mapped != call_id:
            self.originals[mapped] = call_id
        return mapped

    def to_client(self, anthropic_id: str) -> str:
        return self.originals.get(anthropic_id, anthropic_id)
