"""A model group at run time: its deployments, breakers, strategy, and one attempt's bookkeeping.

Contract: ``DeploymentGroup.pick`` returns a deployment that may take an attempt now,
with the breaker ``Lease`` for it (the half-open probe claimed when needed), or tells
when the earliest rate-limited deployment frees up. ``Attempt`` wraps one call to a
deployment: it counts the call in flight from ``start`` until it is settled exactly
once (``succeed`` / ``fail`` / ``abandon``), feeding latency, breaker and gate. This
is the hot path: everything a pick needs is resolved at start-up.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from portway.errors import PortwayError
from portway.protocol.chat import ChatCompletionRequest, ResponseFormatJSONSchema
from portway.protocol.completions import CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest
from portway.providers.base import Capabilities
from portway.providers.text_via_chat import unmappable_param
from portway.routing.breaker import ORDINARY, BreakerView, CircuitBreaker, Lease, Outcome
from portway.routing.catalog import Deployment
from portway.routing.config import GroupRouteConfig
from portway.routing.gate import DeploymentGate
from portway.routing.health import DeploymentHealth, HealthBook
from portway.routing.retry import RetryPolicy, outcome_of, retry_after_of
from portway.routing.state import BreakerRecord, BreakerStore
from portway.routing.strategies import STRATEGIES, StrategyContext


def state_key(deployment: Deployment) -> str:
    """The breaker's key in the store: the deployment id plus a digest of its upstream.

    Processes configured with the same upstream share its breaker; a deployment id
    reused for another upstream does not inherit a stale circuit.
    """
    config = deployment.config
    upstream = (
        f"{config.provider}|{config.base_url or ''}|{config.upstream_model}|{config.path or ''}"
    )
    return f"{deployment.id}:{hashlib.sha1(upstream.encode()).hexdigest()[:10]}"


class Needs(NamedTuple):
    """What a request requires of a deployment (decides which deployments are eligible)."""

    tools: bool
    json_schema: bool
    logprobs: bool
    embeddings: bool = False
    prefill: bool = False  # continue a partial answer (a resumed stream)
    # A text completion only a native completions model can serve (echo, token ids, ...).
    raw_prompt: bool = False
    suffix: bool = False

    @classmethod
    def of(cls, request: ChatCompletionRequest | EmbeddingRequest | CompletionRequest) -> Needs:
        if isinstance(request, EmbeddingRequest):
            return EMBEDDINGS
        if isinstance(request, CompletionRequest):
            return cls(
                tools=False,
                json_schema=False,
                logprobs=request.logprobs is not None,
                raw_prompt=unmappable_param(request) is not None,
                suffix=bool(request.suffix),
            )
        return cls(
            tools=bool(request.tools) and request.tool_choice != "none",
            json_schema=isinstance(request.response_format, ResponseFormatJSONSchema),
            logprobs=bool(request.logprobs),
        )

    def met_by(self, capabilities: Capabilities) -> bool:
        if self.embeddings:
            return capabilities.embeddings
        return (
            capabilities.chat
            and (capabilities.tools or not self.tools)
            and (capabilities.json_schema or not self.json_schema)
            and (capabilities.logprobs or not self.logprobs)
            and (capabilities.prefill or not self.prefill)
            and (capabilities.completions or not self.raw_prompt)
            and (capabilities.suffix or not self.suffix)
        )


EMBEDDINGS = Needs(tools=False, json_schema=False, logprobs=False, embeddings=True)


@dataclass(slots=True)
class Member:
    """A deployment with its breaker, health and store key (all fixed at start-up)."""

    deployment: Deployment
    breaker: CircuitBreaker
    health: DeploymentHealth

    @property
    def id(self) -> str:
        return self.deployment.id


@dataclass(slots=True)
class Pick:
    member: Member
    lease: Lease
    alternatives: int = 0  # other deployments that were ready at the same moment

    @property
    def deployment(self) -> Deployment:
        return self.member.deployment


@dataclass(slots=True)
class NoPick:
    """Nothing is ready; ``ready_at`` is when a rate-limited deployment frees up (if any)."""

    ready_at: float | None
    open_until: float | None


MemberView = tuple[Member, BreakerRecord, BreakerView]
# What an attempt took from the deployment gate: the gate and the tokens it counted.
Admission = tuple[DeploymentGate, int] | None


class DeploymentGroup:
    """One model group: deployments plus the routing machinery its config asks for."""

    def __init__(
        self,
        name: str,
        deployments: Sequence[Deployment],
        config: GroupRouteConfig,
        *,
        store: BreakerStore,
        health: HealthBook,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.config = config
        self.retry = RetryPolicy.from_config(config)
        self.strategy = STRATEGIES[config.strategy](
            StrategyContext(health, rng, config.exploration)
        )
        self.members = tuple(
            Member(d, CircuitBreaker(state_key(d), config.breaker, store, clock), health[d.id])
            for d in deployments
        )
        self._by_id = {member.id: member for member in self.members}
        self._eligible: dict[Needs, tuple[Member, ...]] = {}
        self._store = store
        self._clock = clock

    @property
    def deployments(self) -> list[Deployment]:
        return [member.deployment for member in self.members]

    def member(self, deployment_id: str) -> Member:
        return self._by_id[deployment_id]

    def eligible(self, needs: Needs) -> tuple[Member, ...]:
        """The members able to serve requests with these needs (computed once per kind)."""
        members = self._eligible.get(needs)
        if members is None:
            members = self._eligible[needs] = tuple(
                m for m in self.members if needs.met_by(m.deployment.provider.capabilities)
            )
        return members

    async def views(self, members: Sequence[Member]) -> list[MemberView]:
        records = await self._store.load([m.breaker.key for m in members])
        now = self._clock()
        return [
            (member, record, member.breaker.view(record, now))
            for member, record in zip(members, records, strict=True)
        ]

    async def pick(self, eligible: Sequence[Member], tried: Collection[str]) -> Pick | NoPick:
        """A ready deployment (untried ones first) chosen by the strategy, with its lease."""
        remaining = list(eligible)
        while remaining:
            views = await self.views(remaining)
            ready = [item for item in views if item[2].ready]
            if not ready:
                return _no_pick(views, self._clock())
            if tried:
                ready = [item for item in ready if item[0].id not in tried] or ready
            if len(ready) == 1:
                member, record, view = ready[0]
            else:
                chosen = self.strategy.choose([item[0].deployment for item in ready])
                member, record, view = next(item for item in ready if item[0].id == chosen.id)
            lease = await member.breaker.admit(view, record) if view.probe else ORDINARY
            if lease is not None:
                return Pick(member, lease, len(ready) - 1)
            remaining.remove(member)  # another caller took the half-open probe first
        return NoPick(None, None)

    def start_attempt(self, pick: Pick, admission: Admission) -> Attempt:
        attempt = Attempt(pick.member, pick.lease, admission)
        attempt.start()
        return attempt


def _no_pick(views: Sequence[MemberView], now: float) -> NoPick:
    # Only deployments held back by a 429 alone are worth waiting for; an open circuit
    # (or a probe in flight elsewhere) is not.
    waits = [
        view.throttled_until
        for _, record, view in views
        if view.throttled_until > now
        and (view.state == "closed" or (view.state == "half_open" and not record.probing))
    ]
    opens = [view.open_until for _, _, view in views if view.state == "open"]
    return NoPick(min(waits) if waits else None, min(opens) if opens else None)


class Attempt:
    """One call to one deployment, from start to its single settlement."""

    __slots__ = ("admission", "breaker", "deployment", "health", "lease", "settled", "started")

    def __init__(self, member: Member, lease: Lease, admission: Admission) -> None:
        self.deployment = member.deployment
        self.breaker = member.breaker
        self.health = member.health
        self.lease = lease
        self.admission = admission
        self.settled = False
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.health.begin()

    def first_byte(self) -> None:
        self.health.record_first_byte(time.perf_counter() - self.started)

    async def succeed(self) -> None:
        if self._settle():
            self.health.record_success(time.perf_counter() - self.started)
            if self.lease.probe:
                await self.breaker.settle(self.lease, Outcome.SUCCESS)
            else:
                self.breaker.count_success()  # the common case needs no store round trip

    async def true_up(self, usage: Mapping[str, Any] | None, listeners: list[Any]) -> None:
        """Correct the gate's token count of the attempt that served the call: to the
        reported usage now, else once the usage recorder has counted it (``listeners``,
        ``CallContext.usage_listeners``). An attempt that failed before answering keeps
        its estimate (the upstream may have read the prompt)."""
        if self.admission is None:
            return
        gate, tokens = self.admission
        deployment_id = self.deployment.id
        if usage:
            actual = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
            await gate.release(deployment_id, tokens, actual)
            return

        async def counted(prompt: int, completion: int) -> None:
            await gate.release(deployment_id, tokens, prompt + completion)

        listeners.append(counted)

    async def fail(self, error: BaseException) -> None:
        """The attempt failed: a failed call keeps its admitted token estimate."""
        if self._settle():
            outcome = outcome_of(error)
            if outcome is Outcome.SUCCESS:
                self.health.record_success(time.perf_counter() - self.started)
            else:
                self.health.record_failure(_describe(error))
            await self.breaker.settle(self.lease, outcome, retry_after_of(error))

    async def abandon(self) -> None:
        if self._settle():
            await self.breaker.settle(self.lease, Outcome.ABANDONED)

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        self.health.end()
        return True


def _describe(error: BaseException) -> str:
    if isinstance(error, PortwayError):
        return f"{type(error).__name__}: {error.code}"
    return type(error).__name__
