"""Optional active health checks: a one-token chat request to each deployment on an interval.

Contract: ``ActiveHealthCheck.run`` loops until cancelled. Each round checks every
deployment of the group the way a client call would be admitted: an open circuit is
skipped until its cooldown ends, then the check takes the half-open probe, so a
recovered deployment is closed again without waiting for client traffic (and a dead
one is found before a client hits it). Results feed the breaker and the health stats.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from portway.errors import PortwayError, UpstreamTimeoutError
from portway.protocol.chat import ChatCompletionRequest
from portway.routing.config import HealthCheckConfig
from portway.routing.group import Pick

if TYPE_CHECKING:
    from portway.routing.group import DeploymentGroup, Member

logger = logging.getLogger(__name__)

PING = ChatCompletionRequest.model_validate(
    {"model": "health-check", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
)


class ActiveHealthCheck:
    def __init__(self, group: DeploymentGroup, config: HealthCheckConfig) -> None:
        self.group = group
        self.config = config

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            await asyncio.gather(*(self.check(member) for member in self.group.members))

    async def check(self, member: Member) -> None:
        [(_, record, view)] = await self.group.views([member])
        if not view.ready:
            return
        lease = await member.breaker.admit(view, record)
        if lease is None:
            return
        deployment = member.deployment
        attempt = self.group.start_attempt(Pick(member, lease), None)
        try:
            async with asyncio.timeout(self.config.timeout):
                await deployment.provider.chat(PING)
        except TimeoutError:
            await attempt.fail(UpstreamTimeoutError("The health check timed out."))
        except PortwayError as error:
            await attempt.fail(error)
        except asyncio.CancelledError:
            await attempt.abandon()
            raise
        except Exception as error:  # a provider bug must not end the checks
            logger.warning("health check of %s failed: %r", deployment.id, error)
            await attempt.fail(error)
        else:
            await attempt.succeed()
