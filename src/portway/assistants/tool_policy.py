"""How much tool use one run may have: its tool rounds and what tool outputs add to a prompt.

Contract: a forced ``tool_choice`` ("required", a named function, ``{"type":
"file_search"}``) holds until the run has called a tool (OpenAI: "must call one or more
tools before responding"), then the model may answer (``auto``). After ``max_rounds``
model calls that called tools, every further call gets ``none``, so a model that keeps
calling tools ends the run with a message. A tool output longer than
``max_output_chars`` enters the prompt cut, with a marker saying how much was left out.
Nothing here knows runs: the Responses engine can apply the same limits (its
``max_tool_calls`` as a lower ``max_rounds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_FREE_CHOICES = (None, "none", "auto")


@dataclass(frozen=True, slots=True)
class ToolLimits:
    max_rounds: int
    max_output_chars: int

    def choice(self, requested: Any, rounds_done: int) -> Any:
        """The ``tool_choice`` of the next model call, after ``rounds_done`` tool rounds."""
        if rounds_done >= self.max_rounds:
            return "none"
        if rounds_done and requested not in _FREE_CHOICES:
            return "auto"
        return requested

    def clip(self, output: str) -> str:
        """A tool output as the next prompt shows it: cut after ``max_output_chars``."""
        if len(output) <= self.max_output_chars:
            return output
        omitted = len(output) - self.max_output_chars
        return (
            f"{output[: self.max_output_chars]}\n"
            f"[tool output cut: {omitted} more characters not shown]"
        )
