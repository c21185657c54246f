"""What a summary is keyed by, and the text a turn is summarized or indexed as.

Contract: ``prefix_keys`` hashes a conversation's units (``turns``) as a chain: key ``k``
covers units ``0..k-1`` and is ``sha256(key k-1 ‖ sha256(unit k-1))``, seeded by the
tenant and the summarizer model, so a stable prefix has one key whatever follows it, and
another tenant's identical prefix another key. System and developer messages (the head)
are not part of it: a summary is of the turns only. ``unit_text`` renders a unit for the
summarizer and the full-text index (role, text, tool calls and results).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from portway.context.turns import Turns

# Bumped when the summarizer's prompt changes meaning: older summaries are not reused.
SUMMARY_VERSION = b"portway-summary-v1"


def _canonical(message: Any) -> bytes:
    dumped = message.model_dump(mode="json", exclude_none=True)
    return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)


def prefix_keys(
    messages: Sequence[Any], turns: Turns, tenant: str, model: str, count: int
) -> list[str]:
    """Keys of the prefixes of 1..``count`` units (index ``k-1`` covers ``k`` units)."""
    seed = hashlib.sha256(b"\0".join((SUMMARY_VERSION, tenant.encode(), model.encode()))).digest()
    keys: list[str] = []
    current = seed
    for unit in turns.units[:count]:
        digest = hashlib.sha256()
        for index in unit:
            digest.update(_canonical(messages[index]))
            digest.update(b"\n")
        current = hashlib.sha256(current + digest.digest()).digest()
        keys.append(current.hex())
    return keys


def conversation_scope(messages: Sequence[Any], turns: Turns, tenant: str) -> str | None:
    """The key a conversation's indexed turns live under: its tenant and first turn."""
    if not turns.units:
        return None
    return prefix_keys(messages, turns, tenant, "retrieve", 1)[0]


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        text = getattr(part, "text", None)
        if isinstance(text, str):
            texts.append(text)
        else:
            texts.append(f"[{getattr(part, 'type', 'part')}]")
    return "\n".join(texts)


def message_text(message: Any) -> str:
    """One message as a line of a transcript."""
    role = message.role
    text = content_text(getattr(message, "content", None))
    calls = getattr(message, "tool_calls", None) or ()
    lines = [f"{role}: {text}"] if text else []
    for call in calls:
        lines.append(f"{role} called {call.function.name}({call.function.arguments})")
    if role in ("tool", "function") and not text:
        lines.append(f"{role}: (empty result)")
    return "\n".join(lines) or f"{role}: (empty)"


def unit_text(messages: Sequence[Any], unit: Sequence[int]) -> str:
    return "\n".join(message_text(messages[index]) for index in unit)
