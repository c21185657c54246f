"""Fixtures of the API tests: two callers of a module's ``server`` (keys of two tenants)."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.server import PortwayServer


@pytest.fixture
def alice(server: PortwayServer) -> openai.OpenAI:
    return server.sdk("key-a")


@pytest.fixture
def bob(server: PortwayServer) -> openai.OpenAI:
    return server.sdk("key-b")
