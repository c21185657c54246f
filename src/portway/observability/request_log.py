"""The request log: one entry per HTTP request that reached a model, built from its trace.

Contract: the observability middleware hands every finished ``RequestTrace`` to
``RequestLog.submit``; a request that made at least one pipeline call, or was sent to a
model endpoint (so a 400 before any call is there too), becomes one row, queued for the
background ``BatchWriter`` (the hot path never waits for the database). Tokens, cost and
attempts add up every pipeline call the request made (a routing classifier's included);
the deployment, provider and cache status are those of its last call. Bodies are kept
only when the settings or the key allow it (``BodyPolicy``). Entries older than
``retention_days`` are purged by a background task. Reading is ``page`` and ``get``
(wire shapes in ``REQUEST_LOG_CONTRACT``: the admin API renders them as they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from portway.config import RequestLogConfig
from portway.observability.trace import RequestTrace
from portway.security.principal import Principal
from portway.store.batcher import BatchWriter
from portway.store.request_log import RequestLogFilter, RequestLogRepository

logger = logging.getLogger(__name__)

MODEL_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"}
)
BODIES_METADATA_KEY = "request_log_bodies"
# The contract's cache outcomes; a bypass (not cacheable) or a stale answer shows as null.
_CACHE_STATUS = {"hit": "hit", "miss": "miss", "semantic-hit": "semantic_hit"}
_ERROR_BODY_BYTES = 8192


@dataclass(slots=True)
class BodyPolicy:
    """Whether a request's bodies are kept: server-wide or per key; never for zero
    retention (a shorter retention than the log's is the privacy purge's to apply)."""

    everyone: bool
    limit: int

    def allows(self, principal: Principal | None) -> bool:
        if principal is None or principal.no_store:
            return False
        return self.everyone or principal.metadata.get(BODIES_METADATA_KEY) is True


@dataclass(slots=True)
class Bodies:
    """What the middleware captured of a request's bodies (``keep``: content allowed)."""

    keep: bool = False
    request: bytearray | None = None
    response: bytearray | None = None
    request_truncated: bool = False
    response_truncated: bool = False


def _json_or_text(raw: bytes | None, truncated: bool) -> str | None:
    """Stored as JSON: the body itself when it is JSON, else ``{"text": ...}``."""
    if raw is None:
        return None
    text = bytes(raw).decode("utf-8", "replace")
    if not truncated:
        try:
            orjson.loads(text)
            return text
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps({"text": text, "truncated": truncated}).decode()


def _error(status: int, bodies: Bodies, code: str | None) -> tuple[str | None, ...]:
    """(type, code, message) of a failed request, from the error object it was sent."""
    if status < 400:
        return None, None, None
    error: Any = {}
    if bodies.response:
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed = orjson.loads(bytes(bodies.response[:_ERROR_BODY_BYTES]))
            error = parsed.get("error") if isinstance(parsed, dict) else {}
    if not isinstance(error, dict):
        error = {}
    kind = error.get("type") or ("server_error" if status >= 500 else "invalid_request_error")
    message = error.get("message") or ""
    return str(kind)[:64], (error.get("code") or code), str(message)[:2000]


def compact_spans(trace: RequestTrace, now: float) -> list[tuple[Any, ...]]:
    """The spans as stored: (name, kind, parent, start s, duration s, attributes, error),
    times from the request's start (``spans_json`` makes the wire shape when read)."""
    started = trace.started
    return [
        (
            span.name,
            span.kind,
            span.parent,
            span.start - started,
            (span.end if span.end is not None else now) - span.start,
            span.attributes or None,
            span.error,
        )
        for span in trace.spans
    ]


def spans_json(stored: list[list[Any]]) -> list[dict[str, Any]]:
    out = []
    for name, kind, parent, start, duration, attributes, error in stored:
        item: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "parent": parent,
            "start_ms": round(start * 1000, 3),
            "duration_ms": round(duration * 1000, 3),
            "attributes": attributes or {},
        }
        if error is not None:
            item["error"] = error
        out.append(item)
    return out


def build_row(
    trace: RequestTrace, bodies: Bodies, overhead_ms: float | None, now: float
) -> dict[str, Any]:
    """The request log row of a finished request."""
    records = trace.records
    last = records[-1] if records else None
    principal = trace.state.get("principal")
    if not isinstance(principal, Principal):
        principal = None
    status = trace.status or 500
    if last is not None and status == 200 and last.status != 200:
        status = last.status  # a stream that failed (or was left) after its 200
    error_type, error_code, error_message = _error(
        status, bodies, last.error_code if last is not None else None
    )
    if status >= 400 and error_type is not None and not error_message and last is not None:
        error_message = last.error_code or ""
    first_call = next((span for span in trace.spans if span.kind == "call"), None)
    ttft = next((r.ttft_ms for r in reversed(records) if r.ttft_ms is not None), None)
    # A body a guardrail redacted (pii, secrets) holds what must not be kept in clear.
    keep = bodies.keep and not any(entry.endswith(":redacted") for entry in trace.guardrails)
    return {
        "request_id": trace.request_id or "",
        "created_at": trace.wall_ns / 1e9,
        "endpoint": trace.path[:200],
        "key_id": principal.key_id if principal else None,
        "key_name": principal.name if principal else None,
        "user_id": principal.user if principal else None,
        "team_id": principal.team if principal else None,
        "model": first_call.attributes.get("gen_ai.request.model") if first_call else None,
        "deployment": last.deployment if last else None,
        "provider": trace.provider,
        "status_code": status,
        "latency_ms": round(trace.millis(now), 3),
        "ttft_ms": round(ttft, 3) if ttft is not None else None,
        "overhead_ms": round(overhead_ms, 3) if overhead_ms is not None else None,
        "stream": any(r.stream for r in records),
        "prompt_tokens": sum(r.prompt_tokens for r in records),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "cost_nanos": sum(r.cost_nanos for r in records),
        "cache": _CACHE_STATUS.get(last.cache_status or "") if last else None,
        # Counted from the attempt spans: a failed call's ledger record has none.
        "attempts": sum(1 for span in trace.spans if span.kind == "attempt"),
        "guardrails": orjson.dumps(trace.guardrails).decode() if trace.guardrails else None,
        "error_type": error_type,
        "error_code": error_code,
        "error_message": error_message,
        "trace_id": trace.ensure_trace_id(),
        "spans": orjson.dumps(compact_spans(trace, now)).decode() if trace.spans else None,
        "request_body": _json_or_text(bodies.request, bodies.request_truncated) if keep else None,
        "response_body": (
            _json_or_text(bodies.response, bodies.response_truncated) if keep else None
        ),
    }


def entry_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the admin API shows it (``REQUEST_LOG_CONTRACT``)."""
    error = None
    if row["error_type"] is not None:
        error = {
            "type": row["error_type"],
            "code": row["error_code"],
            "message": row["error_message"] or "",
        }
    return {
        "id": row["request_id"],
        "object": "request_log",
        "created_at": int(row["created_at"]),
        "endpoint": row["endpoint"],
        "key_id": row["key_id"],
        "key_name": row["key_name"],
        "user": row["user_id"],
        "team": row["team_id"],
        "model": row["model"],
        "deployment": row["deployment"],
        "provider": row["provider"],
        "status_code": row["status_code"],
        "latency_ms": row["latency_ms"],
        "ttft_ms": row["ttft_ms"],
        "overhead_ms": row["overhead_ms"],
        "stream": bool(row["stream"]),
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "cost_usd": row["cost_nanos"] / 1e9,
        "cache": row["cache"],
        "attempts": row["attempts"],
        "guardrails": orjson.loads(row["guardrails"]) if row["guardrails"] else [],
        "error": error,
        "trace_id": row["trace_id"],
    }


def detail_json(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = entry_json(row)
    for name in ("request_body", "response_body"):
        raw = row.get(name)
        entry[name] = orjson.loads(raw) if raw else None
    entry["spans"] = spans_json(orjson.loads(row["spans"])) if row.get("spans") else []
    return entry


class RequestLog:
    """Queues finished requests' rows, serves the admin reads, purges old entries."""

    def __init__(self, repository: RequestLogRepository, config: RequestLogConfig) -> None:
        self.repository = repository
        self.config = config
        self.bodies = BodyPolicy(config.bodies, config.max_body_bytes)
        self.writer: BatchWriter[dict[str, Any]] = BatchWriter(
            repository.append,
            name="request log",
            flush_interval=config.flush_interval_ms / 1000,
            max_batch=config.max_batch,
            max_queued=config.max_queued,
        )
        self._purger: asyncio.Task[None] | None = None

    def wants(self, trace: RequestTrace) -> bool:
        return self.config.enabled and (bool(trace.records) or trace.path in MODEL_PATHS)

    def submit(self, row: dict[str, Any]) -> None:
        self.writer.submit(row)

    async def start(self) -> None:
        if not self.config.enabled:
            return
        self.writer.start()
        if self.config.retention_days > 0:
            self._purger = asyncio.create_task(self._purge_loop(), name="request-log-purge")

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        await self.writer.close()

    async def purge(self, now: float | None = None) -> int:
        """Delete the entries past retention now; returns how many."""
        if self.config.retention_days <= 0:
            return 0
        cutoff = (now if now is not None else time.time()) - self.config.retention_days * 86400
        return await self.repository.purge(cutoff)

    async def _purge_loop(self) -> None:
        while True:
            try:
                deleted = await self.purge()
                if deleted:
                    logger.info("request log: purged %d entries past retention", deleted)
            except Exception:
                logger.exception("request log purge failed; retrying next interval")
            await asyncio.sleep(self.config.purge_interval_seconds)

    async def page(self, where: RequestLogFilter, limit: int, after: str | None) -> dict[str, Any]:
        await self.writer.flush()  # this process's latest requests are included
        rows, has_more = await self.repository.page(where, limit, after)
        data = [entry_json(row) for row in rows]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }

    async def get(self, request_id: str, key_id: str | None) -> dict[str, Any] | None:
        await self.writer.flush()
        row = await self.repository.get(request_id, key_id)
        return detail_json(row) if row is not None else None
