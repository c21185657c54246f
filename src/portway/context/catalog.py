"""Built-in context windows of well-known hosted models, for deployments that set none.

Contract: ``known_window`` matches an upstream model id by its longest listed prefix
(a dated snapshot such as ``gpt-4o-2024-08-06`` takes its family's window); an unknown id
has none (``None``), so a deployment's ``context_window`` in the config, or its provider's
(a local GGUF's ``n_ctx``), always wins over this table.
"""

from __future__ import annotations

from collections.abc import Mapping

# Total tokens (prompt and completion) per model family, from the providers' model pages.
WINDOWS: Mapping[str, int] = {
    # OpenAI
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106": 128_000,
    "gpt-4-0125": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo-instruct": 4_096,
    "gpt-3.5-turbo": 16_385,
    "o1-mini": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    # Anthropic
    "claude-3": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-opus-4": 200_000,
    "claude-haiku-4": 200_000,
    "claude-2.1": 200_000,
    "claude-2": 100_000,
}
_BY_LENGTH = sorted(WINDOWS, key=len, reverse=True)


def known_window(model: str) -> int | None:
    """The window of a known model id, by its longest listed prefix (None: unknown)."""
    name = model.rsplit("/", 1)[-1].lower()  # "openai/gpt-4o" as routers spell it
    for prefix in _BY_LENGTH:
        if name.startswith(prefix):
            return WINDOWS[prefix]
    return None
