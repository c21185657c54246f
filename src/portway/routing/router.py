"""The router: the terminal pipeline stage that turns a model name into an answer.

Contract, per call:
1. Resolve the name: a virtual model's rules pick a group; the caller must be allowed
   the name it sent. The group answering is reported in the response ``model`` and
   the route in ``x-portway-route``.
2. Try the group, then its ``fallbacks`` in order. Within a group each attempt goes
   to a deployment the strategy picks among those whose circuit lets it through
   (untried ones first), after the optional ``DeploymentGate`` admits it. Retryable
   failures are retried (backoff with full jitter when the same deployment is tried
   again; a rate-limited deployment's retry-after is waited out when it is short
   enough); other errors reach the client at once, except context-length and
   content-policy errors, which switch to their own fallback lists.
3. Every attempt is bounded by the per-attempt timeout (streams: time to first chunk)
   and all of them together by the deadline (``x-portway-timeout`` overrides it).
4. When nothing answered, degrade as configured (stale answer, static message, 503
   with retry-after); without ``degrade`` the last error is returned.
A stream fails over freely until its first chunk is produced. After that, a cut
(dropped connection, stall, upstream error event, truncated SSE) of a text-only chat
stream is resumed (``stream_resume``, at most ``max_stream_resumes`` times): the same or
another deployment with ``prefill`` continues the partial answer as an assistant prefix,
through the same retries, fallbacks, breakers and deadline, and
``routing.resume.StreamSplice`` splices its chunks into the client's stream. A cut once a
tool-call delta was sent, of a text completion stream, or with nothing left to resume
on, ends the stream (``api.render.EventStreamResponse`` sends the error event).
Embeddings (``embed`` calls) and legacy text completions (``completion`` calls, whole or
streamed) take the same path: groups, fallbacks, retries, breakers, gates and deadlines;
only virtual models (chat rules) and the stale or static answers of ``degrade`` do not
apply to them. A text completion goes to ``Provider.complete_text``/``stream_text``:
served natively where the deployment declares ``completions``, else mapped to chat by
the provider; what the mapping cannot honour is refused here, before any call. The
router is the only caller of providers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from portway.errors import (
    ContentPolicyError,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    PortwayError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from portway.observability.trace import NO_SPAN, AttemptSpan, NoSpan
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelRequest,
    ModelResult,
    StreamHandler,
    Terminal,
)
from portway.protocol.chat import (
    ChatCompletionDict,
    ChatCompletionRequest,
    ResponseFormatJSONSchema,
    WireRequest,
)
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.protocol.native_responses import NativeResponseRequest, chat_usage
from portway.providers.text_via_chat import refuse_unmappable
from portway.routing.breaker import Outcome
from portway.routing.catalog import Deployment, ModelCatalog
from portway.routing.config import GroupRouteConfig, VirtualModelConfig, parse_duration
from portway.routing.degrade import (
    DEGRADED_HEADER,
    StaleAnswerSource,
    completion_chunks,
    static_completion,
)
from portway.routing.gate import DeploymentGate
from portway.routing.group import (
    Admission,
    Attempt,
    DeploymentGroup,
    Member,
    Needs,
    NoPick,
    Pick,
)
from portway.routing.health import HealthBook
from portway.routing.probes import ActiveHealthCheck
from portway.routing.resume import StreamSplice
from portway.routing.retry import is_retryable
from portway.routing.routes import FallbackKind, RouteTable
from portway.routing.rules import AskModel, VirtualModel
from portway.routing.state import BreakerStore, MemoryBreakerStore

logger = logging.getLogger(__name__)

T = TypeVar("T")
ChatOrText = TypeVar("ChatOrText", ChatCompletionRequest, CompletionRequest)

# What a virtual model (chat rules only) does not serve, per other operation.
_SERVES: Mapping[str, str] = {
    "embed": "embeddings",
    "completion": "text completions",
    "response": "native responses",
}

DEPLOYMENT_HEADER = "x-portway-deployment"
ATTEMPTS_HEADER = "x-portway-attempts"
FALLBACK_HEADER = "x-portway-fallback"
ROUTE_HEADER = "x-portway-route"
TIMEOUT_HEADER = "x-portway-timeout"

# Error class → the route setting listing the groups that may answer instead.
SPECIAL_FALLBACKS: tuple[tuple[type[PortwayError], FallbackKind], ...] = (
    (ContextLengthExceededError, "context_window_fallbacks"),
    (ContentPolicyError, "content_policy_fallbacks"),
)
# How long a rate-limited deployment may take to admit a call before the router tries
# another ready deployment instead of queueing (long enough for a Redis round trip).
GATE_PEEK_SECONDS = 0.05
# Waking a little after a retry-after expires, never a little before it.
_WAKE_MARGIN = 0.005


def check_text_capabilities(deployment: Deployment, request: CompletionRequest) -> None:
    """Reject a text completion the deployment cannot honour, before any upstream call."""
    capabilities = deployment.provider.capabilities
    if not capabilities.chat:
        raise InvalidRequestError(
            f"The model `{deployment.name}` is an embedding model; it does not complete text.",
            param="model",
            code="model_not_supported",
        )
    if not capabilities.completions:
        refuse_unmappable(request, deployment.name)
    if request.suffix and not capabilities.suffix:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support `suffix`.",
            param="suffix",
            code="unsupported_parameter",
        )
    if request.logprobs is not None and not capabilities.logprobs:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support logprobs.",
            param="logprobs",
            code="unsupported_parameter",
        )


def check_capabilities(deployment: Deployment, request: ModelRequest) -> None:
    """Reject requests the deployment cannot honour, before any upstream call."""
    capabilities = deployment.provider.capabilities
    if isinstance(request, NativeResponseRequest):
        if not capabilities.responses:
            raise InvalidRequestError(
                f"The model `{deployment.name}` has no native Responses API.",
                param="model",
                code="model_not_supported",
            )
        return
    if isinstance(request, CompletionRequest):
        check_text_capabilities(deployment, request)
        return
    if isinstance(request, EmbeddingRequest):
        if not capabilities.embeddings:
            raise InvalidRequestError(
                f"The model `{deployment.name}` does not support embeddings.",
                param="model",
                code="model_not_supported",
            )
        return
    if not capabilities.chat:
        raise InvalidRequestError(
            f"The model `{deployment.name}` is an embedding model; it does not chat.",
            param="model",
            code="model_not_supported",
        )
    if request.tools and request.tool_choice != "none" and not capabilities.tools:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support tools.", param="tools"
        )
    if isinstance(request.response_format, ResponseFormatJSONSchema) and not (
        capabilities.json_schema
    ):
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support `json_schema` response formats.",
            param="response_format",
        )
    if request.logprobs and not capabilities.logprobs:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support logprobs.", param="logprobs"
        )


def request_deadline(headers: Mapping[str, str], default: float | None) -> float | None:
    """Seconds allowed for routing this call: ``x-portway-timeout``, else the route's deadline."""
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid `{TIMEOUT_HEADER}` header {raw!r}: expected a duration such as 30s, "
            "500ms or a number of seconds.",
            code="invalid_header",
        ) from None


@dataclass(slots=True)
class RoutedCall:
    """One call's routing state across its attempts and fallbacks."""

    requested: str
    primary: str
    route: GroupRouteConfig
    request: ModelRequest
    needs: Needs
    priority: int = 0
    deadline: float | None = None  # time.monotonic() value
    attempts: int = 0
    tried: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)
    last_error: PortwayError | None = None
    next_ready_at: float | None = None  # wall clock: when some deployment frees up

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def limit(self, seconds: float | None) -> float | None:
        """``seconds`` capped by what is left of the deadline."""
        remaining = self.remaining()
        if remaining is None:
            return seconds
        return max(0.0, remaining if seconds is None else min(seconds, remaining))

    def note_unavailable(self, nothing: NoPick) -> None:
        for moment in (nothing.ready_at, nothing.open_until):
            if moment is not None and (self.next_ready_at is None or moment < self.next_ready_at):
                self.next_ready_at = moment

    def headers(self) -> dict[str, str]:
        return {ATTEMPTS_HEADER: str(self.attempts), ROUTE_HEADER: self.primary}


RunAttempt = Callable[[Attempt], Awaitable[T]]
# Counts text in a deployment's tokens: (provider, upstream model, text) -> tokens.
TextCounter = Callable[[str, str, str], Awaitable[int]]
StreamStart = tuple[ModelChunk, AsyncIterator[ModelChunk]]
# A rough tokens-per-character rule for when no tokenizer was given to the router.
_CHARS_PER_TOKEN = 4


class Router(Terminal):
    """Routes each call to a deployment of its (possibly rule-chosen) group."""

    def __init__(
        self,
        catalog: ModelCatalog,
        routes: Mapping[str, GroupRouteConfig | VirtualModelConfig] | None = None,
        *,
        store: BreakerStore | None = None,
        gate: DeploymentGate | None = None,
        stale_source: StaleAnswerSource | None = None,
        rng: random.Random | None = None,
        classify: AskModel | None = None,
        count_text: TextCounter | None = None,
    ) -> None:
        """``classify`` is how virtual models' classifiers reach their model: through the
        pipeline (``pipeline.client.ModelClient.ask``), never around it."""
        # The one answer to "where may a call for this name go", for routing and budgets.
        self.routes = RouteTable(routes or {}, catalog.names())
        self._catalog = catalog
        self._rng = rng or random.Random()
        self._gate = gate
        self._count_text = count_text
        self._stale = stale_source
        self.store: BreakerStore = store or MemoryBreakerStore()
        self.health = HealthBook.for_ids(d.id for d in catalog.deployments)
        self.groups: dict[str, DeploymentGroup] = {}
        for name in catalog.names():
            self.groups[name] = DeploymentGroup(
                name,
                catalog.group(name),
                self.routes.route(name),
                store=self.store,
                health=self.health,
                rng=self._rng,
            )
        self.virtual_models = {
            name: VirtualModel(name, config, classify or _no_classifier)
            for name, config in self.routes.virtual.items()
        }
        self._health_checks = [
            ActiveHealthCheck(group, group.config.health_check)
            for group in self.groups.values()
            if group.config.health_check is not None
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def names(self) -> list[str]:
        """Every name a client may call: the groups and the virtual models."""
        return self.routes.names()

    def chain(self, name: str) -> tuple[str, ...]:
        """Every group a call for ``name`` may be served by, in order (unknown: none)."""
        return self.routes.chain(name)

    async def start(self) -> None:
        await self.store.start()
        self._tasks = [
            asyncio.create_task(check.run(), name=f"health-check:{check.group.name}")
            for check in self._health_checks
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.store.close()

    # Planning ----------------------------------------------------------------

    async def _plan(self, ctx: CallContext) -> RoutedCall:
        requested = ctx.model
        if not ctx.principal.may_use(requested):
            raise ModelNotFoundError(requested)
        primary = requested
        virtual = self.virtual_models.get(requested)
        if virtual is not None:
            if ctx.operation != "chat":
                raise InvalidRequestError(
                    f"The model `{requested}` routes chat calls by rules; it serves no "
                    f"{_SERVES[ctx.operation]}.",
                    param="model",
                    code="model_not_supported",
                )
            primary = await virtual.choose(virtual.facts(ctx))
        group = self.groups.get(primary)
        if group is None:
            raise ModelNotFoundError(requested)
        deadline = request_deadline(ctx.request_headers, group.config.deadline)
        if isinstance(ctx.request, WireRequest):
            ctx.request.bind_tenant(ctx.principal.tenant)  # providers' prefix caches
        return RoutedCall(
            requested=requested,
            primary=primary,
            route=group.config,
            request=ctx.request,
            needs=Needs.of(ctx.request),
            priority=ctx.priority,
            deadline=None if deadline is None else time.monotonic() + deadline,
        )

    # The pipeline stage ------------------------------------------------------

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        call = await self._plan(ctx)
        if ctx.operation == "embed":
            return await self._embed(ctx, call)
        if ctx.operation == "completion":
            return await self._complete_text(ctx, call)
        if ctx.operation == "response":
            return await self._respond(ctx, call)
        return await self._complete(ctx, call)

    async def _respond(self, ctx: CallContext, call: RoutedCall) -> dict[str, Any]:
        """A ``/v1/responses`` create forwarded to a native upstream, its usage accounted."""
        request: NativeResponseRequest = ctx.request  # type: ignore[assignment]

        async def run(attempt: Attempt) -> dict[str, Any]:
            deployment = attempt.deployment
            result = await deployment.provider.respond(
                request.with_output_cap(deployment.output_cap)
            )
            attempt.first_byte()
            return result

        return await self._whole(ctx, call, run, chat_usage)

    async def _complete_text(self, ctx: CallContext, call: RoutedCall) -> CompletionDict:
        request: CompletionRequest = ctx.request  # type: ignore[assignment]

        async def run(attempt: Attempt) -> CompletionDict:
            deployment = attempt.deployment
            result = await deployment.provider.complete_text(_capped(request, deployment))
            attempt.first_byte()
            return result

        return await self._whole(ctx, call, run)

    async def _embed(self, ctx: CallContext, call: RoutedCall) -> EmbeddingResponseDict:
        request: EmbeddingRequest = ctx.request  # type: ignore[assignment]

        async def run(attempt: Attempt) -> EmbeddingResponseDict:
            result = await attempt.deployment.provider.embed(request)
            attempt.first_byte()
            return result

        return await self._whole(ctx, call, run)

    async def _complete(self, ctx: CallContext, call: RoutedCall) -> ChatCompletionDict:
        async def run(attempt: Attempt) -> ChatCompletionDict:
            deployment = attempt.deployment
            completion = await deployment.provider.chat(_capped(ctx.request, deployment))
            attempt.first_byte()  # a whole answer is its own first byte
            if call.route.content_policy_fallbacks and _refused(completion):
                raise ContentPolicyError(
                    f"The deployment `{attempt.deployment.id}` filtered its answer."
                )
            return completion

        routed = await self._route(ctx, call, run, call.route.timeout)
        if routed is None:
            return await self._degrade(ctx, call)
        attempt, completion = routed
        await self._settle(ctx, call, attempt, completion, completion.get("usage"))
        return completion

    async def _whole(
        self,
        ctx: CallContext,
        call: RoutedCall,
        run: Callable[[Attempt], Awaitable[Any]],
        usage_of: Callable[[Any], Any] = lambda usage: usage,
    ) -> Any:
        """A whole call of an operation without degraded answers: routed, then settled."""
        routed = await self._route(ctx, call, run, call.route.timeout)
        if routed is None:
            raise self._no_answer(call)
        attempt, result = routed
        await self._settle(ctx, call, attempt, result, usage_of(result.get("usage")))
        return result

    async def _settle(
        self, ctx: CallContext, call: RoutedCall, attempt: Attempt, result: Any, usage: Any
    ) -> None:
        """A whole answer served: the attempt succeeded, usage trued up, model relabelled."""
        await attempt.succeed()
        await attempt.true_up(usage, ctx.usage_listeners)
        self._served(ctx, call, attempt)
        result["model"] = ctx.model
        ctx.usage = usage

    async def stream(  # type: ignore[override]
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        call = await self._plan(ctx)
        first_byte_timeout = call.route.first_byte_timeout or call.route.timeout
        routed = await self._route(ctx, call, _stream_run(ctx), first_byte_timeout)
        if routed is None:
            if ctx.operation != "chat":
                raise self._no_answer(call)
            for chunk in completion_chunks(await self._degrade(ctx, call)):
                yield chunk
            return
        request = ctx.request
        # Only chat streams resume: a text completion has no assistant message to continue.
        splice = StreamSplice()
        if isinstance(request, ChatCompletionRequest) and call.route.stream_resume:
            splice = StreamSplice(
                choices=request.n or 1, resumes_left=call.route.max_stream_resumes
            )
        while True:
            attempt, (first, rest) = routed
            self._served(ctx, call, attempt)
            relayed = self._relay(ctx, attempt, first, rest, splice)
            try:
                async with aclosing(relayed):
                    async for chunk in relayed:
                        yield chunk
                return
            except PortwayError as error:
                if not splice.resumable():
                    raise
                assert isinstance(request, ChatCompletionRequest)  # only chat streams resume
                routed = await self._resume(ctx, call, request, splice, attempt, error)
                if routed is None:
                    raise error from None

    async def _resume(
        self,
        ctx: CallContext,
        call: RoutedCall,
        request: ChatCompletionRequest,
        splice: StreamSplice,
        cut: Attempt,
        error: PortwayError,
    ) -> tuple[Attempt, StreamStart] | None:
        """Continue a cut stream on a deployment that can continue an assistant prefix."""
        partial = splice.text
        request = await self._remaining(request, partial, cut.deployment)
        if request is None:
            return None
        # ``call.tried`` stays: deployments not tried yet come first, the one that cut
        # the stream is tried again only when nothing else can continue it.
        call.needs = call.needs._replace(prefill=bool(partial))
        echoes: list[str] = []

        def continuation(deployment: Deployment) -> ChatCompletionRequest:
            continued = deployment.provider.continuation(request, partial)
            echoes.append(continued.echo)
            return continued.request

        # A resume gets the deadline's remainder like a failover would; without one,
        # the per-attempt first-byte timeout still bounds each try.
        first_byte_timeout = call.route.first_byte_timeout or call.route.timeout
        try:
            routed = await self._route(
                ctx, call, _stream_run(ctx, continuation), first_byte_timeout
            )
        except PortwayError as failure:
            logger.info("request %s: resuming the stream failed: %s", ctx.request_id, failure)
            return None
        if routed is None:
            return None
        logger.info(
            "request %s: stream cut (%s) resumed on %s after %d characters",
            ctx.request_id,
            error.code,
            routed[0].deployment.id,
            len(partial),
        )
        splice.begin_resume(echoes[-1] if echoes else "")
        return routed

    async def _remaining(
        self, request: ChatCompletionRequest, partial: str, cut: Deployment
    ) -> ChatCompletionRequest | None:
        """The request with the client's output cap less what was produced (None: spent)."""
        cap = request.max_output_tokens
        if cap is None or not partial:
            return request
        produced = await self._count(cut.config.provider, cut.config.upstream_model, partial)
        if produced >= cap:
            return None
        name = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        return request.model_copy(update={name: cap - produced})

    async def _relay(
        self,
        ctx: CallContext,
        attempt: Attempt,
        first: ModelChunk,
        rest: AsyncIterator[ModelChunk],
        splice: StreamSplice,
    ) -> AsyncIterator[ModelChunk]:
        """One attempt's part of the committed stream; the outcome settles the attempt.

        The upstream is closed before any bookkeeping, so a client that leaves stops the
        upstream generation at once. A cut attempt's usage is estimated (prompt, prefix
        and the text it produced) so that a resumed stream's usage covers every attempt.
        """
        model = ctx.model
        failure: BaseException | None = None
        cancelled = False
        usage: dict[str, Any] | None = None
        try:
            chunk: ModelChunk | None = first
            while chunk is not None:
                if ctx.operation == "response":
                    # A Response event: relayed as it is (no resume), its model relabelled.
                    _relabel_event(ctx, chunk, model)
                    yield chunk
                    chunk = await anext(rest, None)
                    continue
                if chunk.get("usage"):
                    usage = dict(chunk["usage"])  # type: ignore[arg-type]  # this attempt's
                spliced = splice.rewrite(chunk)
                if spliced is not None:
                    spliced["model"] = model
                    if spliced.get("usage"):
                        ctx.usage = spliced["usage"]  # type: ignore[assignment]
                    yield spliced
                chunk = await anext(rest, None)
        except asyncio.CancelledError:
            cancelled = True
            raise
        except GeneratorExit:
            raise  # the client left: the deployment was doing fine
        except BaseException as error:
            failure = error
            if isinstance(error, PortwayError):
                _log_failure(ctx, attempt.deployment, error)
            raise
        finally:
            try:
                await rest.aclose()  # type: ignore[attr-defined]
            finally:
                if cancelled:
                    await attempt.abandon()
                elif failure is not None:
                    await attempt.fail(failure)
                else:
                    await attempt.succeed()
                if usage is None and failure is not None and splice.spans_attempts():
                    usage = splice.cut = await self._cut_usage(ctx, attempt, splice)
                    if splice.spent is not None:  # the ledger bills every attempt so far
                        ctx.usage = splice.total(usage)
                # Whatever the outcome, this attempt produced the output the client got.
                await attempt.true_up(usage or ctx.usage, ctx.usage_listeners)

    async def _cut_usage(
        self, ctx: CallContext, attempt: Attempt, splice: StreamSplice
    ) -> dict[str, Any]:
        """An estimate of what a cut attempt used: its prompt (with the prefix it continued)
        and the text it produced, counted by the deployment's tokenizer."""
        config = attempt.deployment.config
        produced = splice.attempt_text
        prefix = splice.text[: len(splice.text) - len(produced)]
        prompt = await ctx.prompt_tokens()
        if prefix:
            prompt += await self._count(config.provider, config.upstream_model, prefix)
        completion = await self._count(config.provider, config.upstream_model, produced)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def _count(self, provider: str, model: str, text: str) -> int:
        if not text:
            return 0
        if self._count_text is None:
            return max(1, len(text) // _CHARS_PER_TOKEN)  # no tokenizer given: the rule of thumb
        return await self._count_text(provider, model, text)

    # Attempts, retries, fallbacks -------------------------------------------------

    async def _route(
        self,
        ctx: CallContext,
        call: RoutedCall,
        run: RunAttempt[T],
        attempt_timeout: float | None,
    ) -> tuple[Attempt, T] | None:
        """The first successful attempt over the group and its fallbacks, or None."""
        chain = [call.primary, *self.routes.fallbacks(call.primary)]
        index = 0
        while index < len(chain):
            try:
                routed = await self._try_group(
                    ctx, call, self.groups[chain[index]], run, attempt_timeout, primary=index == 0
                )
            except PortwayError as error:
                alternatives = self._special_fallbacks(call, error, chain[: index + 1])
                if not alternatives:
                    error.headers.update(call.headers())
                    raise
                logger.info("%s on %s; trying %s", type(error).__name__, chain[index], alternatives)
                call.last_error = error
                chain = chain[: index + 1] + alternatives
            else:
                if routed is not None:
                    return routed
            index += 1
            if call.expired():
                return None
        return None

    def _special_fallbacks(
        self, call: RoutedCall, error: PortwayError, tried: list[str]
    ) -> list[str]:
        for error_class, kind in SPECIAL_FALLBACKS:
            if isinstance(error, error_class):
                return [g for g in self.routes.fallbacks(call.primary, kind) if g not in tried]
        return []

    async def _try_group(
        self,
        ctx: CallContext,
        call: RoutedCall,
        group: DeploymentGroup,
        run: RunAttempt[T],
        attempt_timeout: float | None,
        *,
        primary: bool,
    ) -> tuple[Attempt, T] | None:
        eligible = group.eligible(call.needs)
        if not eligible:
            if primary:
                check_capabilities(group.members[0].deployment, call.request)
            return None
        policy = group.retry
        attempts_left = policy.attempts
        retry_number = 0
        while attempts_left > 0 and not call.expired():
            picked = await self._pick(call, group, eligible)
            if picked is None:
                return None
            pick, waited = picked
            deployment = pick.deployment
            try:
                if deployment.id in call.tried and not waited:
                    await self._sleep(ctx, call, policy.backoff(retry_number, self._rng))
                admission = await self._admit(ctx, call, pick)
            except BaseException as error:
                await pick.member.breaker.settle(pick.lease, Outcome.ABANDONED)
                if isinstance(error, PortwayError) and is_retryable(error):
                    call.excluded.add(deployment.id)  # the gate says it is saturated
                    call.last_error = error
                    continue
                raise
            attempts_left -= 1
            retry_number += 1
            call.attempts += 1
            call.tried.add(deployment.id)
            attempt = group.start_attempt(pick, admission)
            limit = call.limit(attempt_timeout)
            try:
                with _attempt_span(ctx, deployment, group.name, call.attempts):
                    if limit is None:
                        return attempt, await run(attempt)
                    async with asyncio.timeout(limit):
                        return attempt, await run(attempt)
            except TimeoutError:
                error = UpstreamTimeoutError(
                    f"The deployment `{deployment.id}` did not answer in time"
                    + (f" ({limit:.3g}s)." if limit is not None else ".")
                )
                await attempt.fail(error)
                call.last_error = error
            except PortwayError as error:
                _log_failure(ctx, deployment, error)
                await attempt.fail(error)
                if not is_retryable(error):
                    raise
                call.last_error = error
            except asyncio.CancelledError:
                await attempt.abandon()
                raise
            except BaseException as error:
                await attempt.fail(error)
                raise
        return None

    async def _pick(
        self, call: RoutedCall, group: DeploymentGroup, eligible: Sequence[Member]
    ) -> tuple[Pick, bool] | None:
        """A deployment for the next attempt, waiting once for a short retry-after."""
        waited = False
        while True:
            candidates = eligible
            if call.excluded:
                candidates = [m for m in eligible if m.id not in call.excluded]
            if not candidates:
                return None
            picked = await group.pick(candidates, call.tried)
            if isinstance(picked, Pick):
                return picked, waited
            call.note_unavailable(picked)
            if picked.ready_at is None or waited:
                return None
            wait = picked.ready_at - time.time() + _WAKE_MARGIN
            remaining = call.remaining()
            if wait > group.retry.retry_after_cap or (remaining is not None and wait > remaining):
                return None
            await asyncio.sleep(max(0.0, wait))
            waited = True

    async def _admit(self, ctx: CallContext, call: RoutedCall, pick: Pick) -> Admission:
        """Pass the gate, when the deployment has limits; returns what to true up later.

        With other deployments ready, a saturated one is not worth queueing for: the gate
        gets a moment to admit at once, then the router moves on. The last candidate
        waits in the gate's queue.
        """
        gate = self._gate
        deployment_id = pick.deployment.id
        if gate is None or not gate.limited(deployment_id):
            return None
        tokens = await ctx.prompt_tokens() if gate.counts_tokens(deployment_id) else 0
        if pick.alternatives == 0:
            await gate.acquire(deployment_id, tokens, call.priority)
            return gate, tokens
        try:
            async with asyncio.timeout(GATE_PEEK_SECONDS):
                await gate.acquire(deployment_id, tokens, call.priority)
        except TimeoutError:
            raise RateLimitError(
                f"Deployment `{deployment_id}` is at its rate limit.", retry_after=1.0
            ) from None
        return gate, tokens

    @staticmethod
    async def _sleep(ctx: CallContext, call: RoutedCall, seconds: float) -> None:
        limited = call.limit(seconds)
        if limited:
            await asyncio.sleep(limited)
            if ctx.trace is not None:  # a retry's backoff is waiting on the upstream too
                ctx.trace.upstream_wait += limited

    # Outcomes ----------------------------------------------------------------

    @staticmethod
    def _served(ctx: CallContext, call: RoutedCall, attempt: Attempt) -> None:
        group = attempt.deployment.name
        ctx.model = group
        ctx.deployment = attempt.deployment.id
        ctx.attempts = call.attempts
        headers = ctx.response_headers
        headers.update(call.headers())
        headers[DEPLOYMENT_HEADER] = attempt.deployment.id
        if group != call.primary:
            headers[FALLBACK_HEADER] = group

    def _no_answer(self, call: RoutedCall) -> PortwayError:
        """The error for a call nothing answered: the last one, else 503 with retry-after."""
        degrade = call.route.degrade
        if degrade is None and call.last_error is not None:
            call.last_error.headers.update(call.headers())
            return call.last_error
        return self._unavailable(call, degrade.retry_after if degrade is not None else None)

    async def _degrade(self, ctx: CallContext, call: RoutedCall) -> ChatCompletionDict:
        """What to answer when no attempt succeeded (or none was possible)."""
        config = call.route.degrade
        if config is None:
            raise self._no_answer(call)
        if config.stale and self._stale is not None:
            answer = await self._stale.stale_answer(ctx)
            if answer is not None:
                ctx.cache_status = "stale"
                return self._degraded(ctx, call, answer)
        if config.message is not None:
            return self._degraded(ctx, call, static_completion(call.primary, config.message))
        raise self._unavailable(call, config.retry_after)

    @staticmethod
    def _degraded(
        ctx: CallContext, call: RoutedCall, completion: ChatCompletionDict
    ) -> ChatCompletionDict:
        ctx.model = call.primary
        ctx.attempts = call.attempts
        completion["model"] = call.primary
        ctx.response_headers.update(call.headers())
        ctx.response_headers[DEGRADED_HEADER] = "true"
        return completion

    @staticmethod
    def _unavailable(call: RoutedCall, retry_after: float | None) -> ServiceUnavailableError:
        if retry_after is None:
            soonest = call.next_ready_at
            retry_after = soonest - time.time() if soonest is not None else 1.0
        error = ServiceUnavailableError(
            f"No deployment of `{call.primary}` is available right now; please retry later."
        )
        error.headers.update(call.headers())
        error.headers["retry-after"] = str(max(1, round(retry_after)))
        return error

    # Health ------------------------------------------------------------------------

    async def health_report(self) -> dict[str, Any]:
        """Every deployment's breaker state (shared) and health (this process's view)."""
        now = time.time()
        rows: list[dict[str, Any]] = []
        for group in self.groups.values():
            for member, record, view in await group.views(group.members):
                deployment, health, breaker = member.deployment, member.health, member.breaker
                rows.append(
                    {
                        "id": deployment.id,
                        "model": group.name,
                        "provider": deployment.config.provider,
                        "state": view.state,
                        "available": view.ready,
                        "in_flight": health.in_flight,
                        "requests": health.requests,
                        "failures": health.failures,
                        "error_rate": round(breaker.window.failure_rate(now), 4),
                        "consecutive_failures": breaker.consecutive_failures,
                        "latency_ms": _millis(health.latency_ewma),
                        "ttfb_ms": _millis(health.ttfb_ewma),
                        "open_until": record.open_until if view.state != "closed" else None,
                        "throttled_until": (
                            record.throttled_until if record.throttled_until > now else None
                        ),
                        "last_error": health.last_error,
                    }
                )
        return {"object": "list", "store": self.store.kind, "data": rows}


async def _no_classifier(request: ChatCompletionRequest, parent: CallContext) -> ChatCompletionDict:
    raise ServiceUnavailableError("No classifier client was given to the router.")


def _attempt_span(
    ctx: CallContext, deployment: Deployment, group: str, number: int
) -> AttemptSpan | NoSpan:
    """The attempt's span and upstream wait in the request's trace (a no-op without one)."""
    trace = ctx.trace
    if trace is None:
        return NO_SPAN
    return trace.attempt(deployment.id, deployment.config.provider, group, number)


def _log_failure(ctx: CallContext, deployment: Deployment, error: PortwayError) -> None:
    """The operator's record of a failed attempt, with what the client was not shown."""
    if error.detail is None:
        logger.info("request %s: %s failed: %s", ctx.request_id, deployment.id, error.message)
        return
    logger.warning(
        "request %s: %s failed: %s (%s)", ctx.request_id, deployment.id, error.message, error.detail
    )


def _stream_run(
    ctx: CallContext,
    continuation: Callable[[Deployment], ChatCompletionRequest] | None = None,
) -> RunAttempt[StreamStart]:
    """An attempt that opens a stream and waits for its first chunk (the commit point);
    with ``continuation``, the chat request that continues a cut stream."""

    async def run(attempt: Attempt) -> StreamStart:
        deployment = attempt.deployment
        if continuation is None:
            chunks = _open_stream(ctx, deployment)
        else:
            chunks = deployment.provider.stream(_capped(continuation(deployment), deployment))
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            raise UpstreamError("The upstream produced an empty stream.") from None
        except BaseException:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise
        attempt.first_byte()
        return first, chunks

    return run


def _capped(request: ChatOrText, deployment: Deployment) -> ChatOrText:
    """The request as the deployment gets it: without a client cap, the one budgets assumed."""
    return request.with_output_cap(deployment.output_cap)  # type: ignore[return-value]


def _relabel_event(ctx: CallContext, event: ModelChunk, model: str) -> None:
    """Name the public model in a relayed Response event and keep the usage it reports."""
    # The Response an event carries (created, in_progress, ..., completed) names the model.
    response: Any = event.get("response")
    if isinstance(response, dict):
        response["model"] = model
        if response.get("usage"):
            ctx.usage = chat_usage(response["usage"])


def _open_stream(ctx: CallContext, deployment: Deployment) -> AsyncIterator[ModelChunk]:
    """The deployment's stream for the call's operation (chat, a text completion, or a
    native response's events)."""
    provider = deployment.provider
    if isinstance(ctx.request, NativeResponseRequest):
        return provider.stream_response(ctx.request.with_output_cap(deployment.output_cap))
    if isinstance(ctx.request, CompletionRequest):
        return provider.stream_text(_capped(ctx.request, deployment))
    return provider.stream(_capped(ctx.request, deployment))  # type: ignore[arg-type]


def _refused(completion: ChatCompletionDict) -> bool:
    choices = completion.get("choices") or []
    return bool(choices) and all(c.get("finish_reason") == "content_filter" for c in choices)


def _millis(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
