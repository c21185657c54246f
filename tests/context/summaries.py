"""A fake upstream answer that writes short summaries, and helpers to tell summarizer
calls from the calls they were made for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from portway.context.summarizer import INSTRUCTIONS
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.upstream import Action, Recorded

_TURN = re.compile(r"Question (\d+)")


def is_summarizer_call(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and messages[0].get("content") == INSTRUCTIONS


def summarizer_calls(fake: FakeOpenAI) -> list[Recorded]:
    return [
        r
        for r in fake.requests
        if r.path.endswith("/chat/completions") and is_summarizer_call(r.body)
    ]


def model_calls(fake: FakeOpenAI) -> list[Recorded]:
    return [
        r
        for r in fake.requests
        if r.path.endswith("/chat/completions") and not is_summarizer_call(r.body)
    ]


@dataclass
class Summaries(Action):
    """Summarizer calls get ``S<n>[turns a-b]`` (the questions their prompt names, the
    previous summary's included); every other call the default echo."""

    written: list[str] = field(default_factory=list)
    other: Action = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if not is_summarizer_call(body):
            return await self.other.respond(request, body)
        prompt = body["messages"][-1]["content"]
        turns = [int(n) for n in _TURN.findall(prompt)]
        earlier = re.findall(r"turns (\d+)-", prompt)
        first = min([*turns, *(int(n) for n in earlier)], default=-1)
        summary = f"S{len(self.written) + 1}[turns {first}-{max(turns, default=-1)}]"
        self.written.append(summary)
        return await Reply(content=summary).respond(request, body)
