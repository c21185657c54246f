"""Executing a claimed batch: validate its file, run its lines, finalize.

Contract: ``execute`` takes a batch from where it stands (``validating``,
``in_progress`` or ``finalizing``), so a batch claimed again after a restart resumes:
the lines that have a stored result are skipped, the others run (a line whose call was
in flight when its process died runs again). At most ``batches.concurrency`` lines of a
batch are in flight; each is one call through the ``LineHandler`` of the batch's
endpoint, for the batch creator's key as it is now (a revoked key fails the batch).
A line's HTTP-level failure (a 400 body, a 5xx after the router's retries) is its
result in the error file; the key's own rate limit is waited out, not recorded.
Past ``expires_at`` no new line starts and the batch expires.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portway.assistants.engine import Progress
from portway.assistants.principals import RunPrincipals
from portway.batches.endpoints import LineCall, LineHandler
from portway.batches.lifecycle import BatchLifecycle
from portway.batches.lines import InputLine, ParsedFile, parse_input
from portway.config import BatchesConfig
from portway.errors import AuthenticationError, InternalServerError, PortwayError, RateLimitError
from portway.protocol.batches import BatchOutputLineDict, LineErrorDict, LineResponseDict
from portway.retrieval.files import FileService
from portway.store.batches import BatchStore
from portway.store.models.batches import BatchRow

logger = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 8
MAX_RATE_LIMIT_WAIT = 30.0


@dataclass
class _Stop:
    """Why no further line may start (the creator's key stopped working)."""

    error: AuthenticationError | None = None


def _usage(body: Mapping[str, Any]) -> dict[str, int]:
    """A line's token counts as the batch's usage columns (a chat completion's or
    embedding's ``prompt_tokens`` shape, or a Response's ``input_tokens`` shape)."""
    usage = body.get("usage") or {}
    if "input_tokens" in usage:
        prompt_details = usage.get("input_tokens_details") or {}
        output_details = usage.get("output_tokens_details") or {}
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    else:
        prompt_details = usage.get("prompt_tokens_details") or {}
        output_details = usage.get("completion_tokens_details") or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return {
        "input_tokens": int(prompt or 0),
        "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
        "output_tokens": int(completion or 0),
        "reasoning_tokens": int(output_details.get("reasoning_tokens") or 0),
    }


class BatchEngine:
    def __init__(
        self,
        *,
        store: BatchStore,
        lifecycle: BatchLifecycle,
        files: FileService,
        handlers: Mapping[str, LineHandler],
        principals: RunPrincipals,
        config: BatchesConfig,
        owner: str,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._files = files
        self._handlers = handlers
        self._principals = principals
        self._config = config
        self._owner = owner

    async def execute(self, batch: BatchRow, progress: Progress) -> None:
        parsed: ParsedFile | None = None
        if batch.status == "validating":
            parsed = await self._parse(batch)
            if parsed is None:
                return
            if parsed.errors:
                await self._lifecycle.fail(
                    batch.id, "invalid_file", "", expected=("validating",), errors=parsed.errors
                )
                return
            model = parsed.lines[0].body.get("model")
            started = await self._store.transition(
                batch.id,
                ("validating",),
                {
                    "status": "in_progress",
                    "in_progress_at": self._lifecycle.clock(),
                    "total": len(parsed.lines),
                    "model": model if isinstance(model, str) else None,
                },
                owner=self._owner,
            )
            if started is None:
                await self._settle(batch.id)
                return
            batch = started
        if batch.status == "in_progress":
            parsed = parsed or await self._parse(batch)
            if parsed is None:
                return
            if not await self._run(batch, parsed.lines):
                return
            finalizing = await self._store.transition(
                batch.id,
                ("in_progress",),
                {"status": "finalizing", "finalizing_at": self._lifecycle.clock()},
                owner=self._owner,
            )
            if finalizing is None:
                await self._settle(batch.id)
                return
            batch = finalizing
        if batch.status == "finalizing":
            await self._lifecycle.complete(batch.id)

    async def _settle(self, batch_id: str) -> None:
        """A step found the batch changed under it: a cancellation it still holds is
        finished now (nobody else will until its lease lapses); anything else is not ours."""
        current = await self._store.get_by_id(batch_id)
        if current is not None and current.status == "cancelling" and current.owner == self._owner:
            await self._lifecycle.cancel(batch_id)

    async def _parse(self, batch: BatchRow) -> ParsedFile | None:
        """The input file's lines; None when the file is gone (the batch failed)."""
        record = await self._files.repository.get(
            batch.tenant, batch.input_file_id, self._lifecycle.clock()
        )
        if record is None:
            await self._lifecycle.fail(
                batch.id,
                "invalid_file",
                f"The input file {batch.input_file_id} no longer exists.",
            )
            return None
        content = await self._files.read(record)
        return await asyncio.to_thread(parse_input, content, batch.endpoint, self._config.max_lines)

    async def _run(self, batch: BatchRow, lines: list[InputLine]) -> bool:
        """Run the lines without a result; False when the batch came to rest instead."""
        finished = await self._store.finished_lines(batch.id)
        handler = self._handlers[batch.endpoint]
        slots = asyncio.Semaphore(self._config.concurrency)
        stop = _Stop()
        expired = False
        async with asyncio.TaskGroup() as group:
            for line in lines:
                if line.index in finished:
                    continue
                await slots.acquire()
                if stop.error is not None:
                    slots.release()
                    break
                if self._lifecycle.clock() >= batch.expires_at:
                    slots.release()
                    expired = True
                    break
                group.create_task(self._line(batch, line, handler, slots, stop))
        if stop.error is not None:
            await self._lifecycle.fail(batch.id, stop.error.code, stop.error.message)
            return False
        if expired:
            await self._expire(batch, [line for line in lines if line.index not in finished])
            return False
        return True

    async def _expire(self, batch: BatchRow, unfinished: list[InputLine]) -> None:
        """The window closed: each line that did not run gets an error line, as OpenAI
        writes them, then the batch expires with its files."""
        expired = _Outcome.error(
            "batch_expired",
            "This request could not be executed before the completion window expired.",
        )
        for line in unfinished:
            await self._record(batch, line, secrets.token_hex(12), expired)
        await self._lifecycle.expire(batch.id)

    async def _line(
        self,
        batch: BatchRow,
        line: InputLine,
        handler: LineHandler,
        slot: asyncio.Semaphore,
        stop: _Stop,
    ) -> None:
        try:
            try:
                principal = await self._principals.current(batch.principal)
            except AuthenticationError as error:
                stop.error = error
                return
            suffix = secrets.token_hex(12)
            call = LineCall(
                principal=principal,
                request_id=f"req_{suffix}",
                priority=self._config.priority,
                price_factor=1.0 - self._config.discount,
            )
            await self._record(batch, line, suffix, await self._answer(line, handler, call))
        finally:
            slot.release()

    async def _record(
        self, batch: BatchRow, line: InputLine, suffix: str, outcome: _Outcome
    ) -> None:
        output: BatchOutputLineDict = {
            "id": f"batch_req_{suffix}",
            "custom_id": line.custom_id,
            "response": outcome.response,
            "error": outcome.error_detail,
        }
        await self._store.record_line(batch.id, line.index, outcome.ok, dict(output), outcome.usage)

    async def _answer(self, line: InputLine, handler: LineHandler, call: LineCall) -> _Outcome:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                body = await handler(line.body, call)
            except RateLimitError as error:
                if attempt == RATE_LIMIT_RETRIES:
                    return _Outcome.failed(error, call)
                await asyncio.sleep(min(max(error.retry_after or 1.0, 0.1), MAX_RATE_LIMIT_WAIT))
            except PortwayError as error:
                return _Outcome.failed(error, call)
            except Exception:
                logger.exception("batch line %s failed unexpectedly", line.custom_id)
                failure = InternalServerError("The server had an error processing this request.")
                return _Outcome.failed(failure, call)
            else:
                response: LineResponseDict = {
                    "status_code": 200,
                    "request_id": call.request_id,
                    "body": dict(body),
                }
                return _Outcome(True, response, None, _usage(body))
        raise AssertionError("the last attempt returns")


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A line's result: an HTTP answer (``response``) or, without one, an ``error``."""

    ok: bool
    response: LineResponseDict | None
    error_detail: LineErrorDict | None
    usage: dict[str, int] = field(default_factory=dict)

    @classmethod
    def failed(cls, error: PortwayError, call: LineCall) -> _Outcome:
        response: LineResponseDict = {
            "status_code": error.status_code,
            "request_id": call.request_id,
            "body": error.to_dict(),
        }
        return cls(False, response, None)

    @classmethod
    def error(cls, code: str, message: str) -> _Outcome:
        return cls(False, None, {"code": code, "message": message})
