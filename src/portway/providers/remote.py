"""Base class of the providers reached over HTTP (OpenAI-compatible, Anthropic, ...)."""

from __future__ import annotations

from portway.config import ModelConfig
from portway.providers.base import Capabilities, Provider
from portway.providers.http import HttpUpstream


class RemoteProvider(Provider):
    """A provider reached over HTTP: owns one ``HttpUpstream`` and fixed capabilities."""

    def __init__(self, config: ModelConfig, http: HttpUpstream, capabilities: Capabilities) -> None:
        super().__init__(config)
        self._http = http
        self._capabilities = capabilities

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()
