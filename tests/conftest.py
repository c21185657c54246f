"""Shared fixtures: fake upstreams on loopback and real Portway servers talking HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from portway.app import create_app
from portway.config import Settings
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

pytest_plugins = ["tests.storage"]

SERVICES_REQUIRED = os.environ.get("PORTWAY_TEST_SERVICES") == "required"


def service_unavailable(reason: str) -> None:
    """Skip (or, with PORTWAY_TEST_SERVICES=required, fail) when a service is unreachable."""
    if SERVICES_REQUIRED:
        pytest.fail(f"{reason} (PORTWAY_TEST_SERVICES=required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture(scope="session")
def backup_upstream() -> Iterator[FakeOpenAI]:
    """A second fake OpenAI upstream, for fallback and retry across deployments."""
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backup(backup_upstream: FakeOpenAI) -> Iterator[FakeOpenAI]:
    backup_upstream.reset()
    yield backup_upstream
    backup_upstream.reset()


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    fake_anthropic_server.reset()
    yield fake_anthropic_server
    fake_anthropic_server.reset()


PortwayFactory = Callable[..., PortwayServer]


def with_private_state(settings: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Settings whose database and files live in ``directory`` unless the test chose them."""
    settings = {
        "database_url": f"sqlite:///{directory}/portway.db",
        "server_key_file": str(directory / "server.key"),
        **settings,
    }
    files = {"storage_dir": str(directory / "files"), **settings.get("files", {})}
    ledger = {"journal_dir": str(directory / "ledger-journal"), **settings.get("ledger", {})}
    return {**settings, "files": files, "ledger": ledger}


@pytest.fixture(scope="module")
def start_portway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortwayFactory]:
    """Start Portway servers from settings dicts; all are stopped when the module ends.

    Unless the settings name a ``database_url``, each server gets its own SQLite file.
    """
    servers: list[PortwayServer] = []

    def start(settings: dict[str, Any] | Settings) -> PortwayServer:
        if isinstance(settings, dict):
            settings = Settings.model_validate(
                with_private_state(settings, tmp_path_factory.mktemp("portway"))
            )
        server = PortwayServer(create_app(settings))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def fake_model(name: str, base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "openai",
        "model": f"upstream-{name}",
        "base_url": base_url,
        "api_key": "sk-upstream-secret",
        **extra,
    }


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    """A Portway in front of the fake OpenAI upstream, no auth."""
    return start_portway({"models": [fake_model("fake-gpt", fake_openai_server.base_url)]})


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return gateway.sdk()
