"""Cache policy: per model (resolved once at start-up) and per request (from its headers).

Contract: ``resolve_policies`` folds the ``cache:`` defaults and the matching
``cache.models`` overrides (exact names or globs, applied in file order) into one
``ModelPolicy`` per public model. ``decide`` turns a policy, the request and its headers
into what this call may do: read the cache, write it, and for how long. Request
controls: ``Cache-Control: no-cache`` (don't read, do write), ``no-store`` (neither),
``x-portway-cache: bypass`` (neither) / ``refresh`` (don't read, do write),
``x-portway-cache-ttl: <seconds>`` (bounded by ``cache.max_ttl``, else by the model's own
``ttl``: a client may shorten how long its answer is kept, never lengthen it). In
``deterministic`` mode only requests with ``temperature: 0`` or a ``seed`` are cached.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from portway.config import CacheConfig, CacheMode
from portway.errors import InvalidRequestError
from portway.protocol.chat import ChatCompletionRequest

CACHE_HEADER = "x-portway-cache"
TTL_HEADER = "x-portway-cache-ttl"
NAMESPACE_HEADER = "x-portway-cache-namespace"
SIMILARITY_HEADER = "x-portway-cache-similarity"
MAX_NAMESPACE_CHARS = 128


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    enabled: bool
    ttl: float
    mode: CacheMode
    semantic: bool
    threshold: float


@dataclass(frozen=True, slots=True)
class Decision:
    read: bool
    write: bool
    ttl: float

    @property
    def skipped(self) -> bool:
        return not (self.read or self.write)


def resolve_policies(config: CacheConfig, model_names: Iterable[str]) -> dict[str, ModelPolicy]:
    policies = {}
    for name in model_names:
        enabled, ttl, mode = config.enabled, config.ttl, config.mode
        semantic, threshold = config.semantic.enabled, config.semantic.threshold
        for pattern, override in config.models.items():
            if not fnmatchcase(name, pattern):
                continue
            enabled = override.enabled if override.enabled is not None else enabled
            ttl = override.ttl if override.ttl is not None else ttl
            mode = override.mode if override.mode is not None else mode
            semantic = override.semantic if override.semantic is not None else semantic
            if override.semantic_threshold is not None:
                threshold = override.semantic_threshold
        policies[name] = ModelPolicy(
            enabled=config.enabled and enabled,
            ttl=ttl,
            mode=mode,
            semantic=config.enabled and enabled and semantic,
            threshold=threshold,
        )
    return policies


def is_deterministic(request: ChatCompletionRequest) -> bool:
    return request.temperature == 0 or request.seed is not None


def _requested_ttl(raw: str, ceiling: float) -> float:
    try:
        ttl = float(raw)
    except ValueError:
        ttl = math.nan
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidRequestError(
            f"Invalid value for header '{TTL_HEADER}': expected a positive number of seconds.",
            param=TTL_HEADER,
            code="invalid_value",
        )
    return min(ttl, ceiling)


def decide(
    policy: ModelPolicy,
    request: ChatCompletionRequest,
    headers: Mapping[str, str],
    max_ttl: float | None,
) -> Decision:
    read = write = policy.mode == "always" or is_deterministic(request)
    directives = {part.strip().lower() for part in headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        read = write = False
    elif "no-cache" in directives:
        read = False
    control = headers.get(CACHE_HEADER)
    if control is not None:
        control = control.strip().lower()
        if control == "bypass":
            read = write = False
        elif control == "refresh":
            read = False
        else:
            raise InvalidRequestError(
                f"Invalid value for header '{CACHE_HEADER}': expected 'bypass' or 'refresh'.",
                param=CACHE_HEADER,
                code="invalid_value",
            )
    raw_ttl = headers.get(TTL_HEADER)
    ceiling = policy.ttl if max_ttl is None else max_ttl
    ttl = policy.ttl if raw_ttl is None else _requested_ttl(raw_ttl, ceiling)
    if raw_ttl is None and max_ttl is not None:
        ttl = min(ttl, max_ttl)
    return Decision(read=read, write=write, ttl=ttl)


def sub_namespace(headers: Mapping[str, str]) -> str | None:
    """A client's own partition of its tenant's cache (it can never leave its tenant)."""
    value = headers.get(NAMESPACE_HEADER)
    if value is None:
        return None
    if not value or len(value) > MAX_NAMESPACE_CHARS or not value.isprintable():
        raise InvalidRequestError(
            f"Invalid value for header '{NAMESPACE_HEADER}': expected 1 to "
            f"{MAX_NAMESPACE_CHARS} printable characters.",
            param=NAMESPACE_HEADER,
            code="invalid_value",
        )
    return value
