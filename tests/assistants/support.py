"""Helpers for Assistants API tests: gateways, tenants, a fake built-in tool, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import openai

from portway.assistants.builtin import Citation, ToolInvocation, ToolOutcome
from portway.errors import AuthenticationError
from portway.keys.service import display_prefix, secret_digest
from portway.security.principal import Principal
from portway.store import Database
from portway.store.keys import KeyFields, KeyRepository
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MODEL = "fake-gpt"
TEAM_A_KEY = "sk-team-a"
TEAM_B_KEY = "sk-team-b"
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class TenantAuthenticator:
    """Test-only keys: each maps to a principal of its own team (a tenant)."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        self.principals = principals

    async def authenticate(self, token: str | None) -> Principal:
        principal = self.principals.get(token or "")
        if principal is None:
            raise AuthenticationError("Incorrect API key provided.")
        return principal


TENANTS = TenantAuthenticator(
    {
        TEAM_A_KEY: Principal(kind="virtual_key", key_id="key_a", team="team-a"),
        TEAM_B_KEY: Principal(kind="virtual_key", key_id="key_b", team="team-b"),
    }
)


async def _store_tenant_keys(database_url: str) -> None:
    database = Database(database_url)
    await database.start()
    try:
        keys = KeyRepository(database)
        for secret, principal in TENANTS.principals.items():
            assert principal.key_id is not None
            if await keys.get(principal.key_id) is None:
                fields = KeyFields(team_id=principal.team)
                digest, prefix = secret_digest(secret), display_prefix(secret)
                await keys.create(principal.key_id, digest, prefix, fields)
    finally:
        await database.close()


def use_test_tenants(server: PortwayServer) -> None:
    """Authenticate ``server``'s callers with ``TENANTS``, whose keys are also stored as
    virtual keys (runs look their creator's key up by id before each model call)."""
    database_url = server.app.state.services.settings.database_url
    # Its own thread and loop: callers may be async tests with a loop running.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _store_tenant_keys(database_url)).result()
    server.app.state.services.authenticator = TENANTS


def start_gateway(
    start_portway: PortwayFactory, fake: FakeOpenAI, **assistants: Any
) -> PortwayServer:
    """A Portway in front of the fake upstream whose keys are ``TEAM_A_KEY``/``TEAM_B_KEY``."""
    config = {"poll_after_ms": 10, "sweep_interval_seconds": 0.05, **assistants}
    # No gateway retries: the tests script single upstream failures and watch the run fail.
    server = start_portway(
        {
            "models": [fake_model(MODEL, fake.base_url)],
            "assistants": config,
            "router": {"*": {"retries": 0}},
        }
    )
    use_test_tenants(server)
    return server


def sdk(server: PortwayServer, key: str = TEAM_A_KEY) -> openai.OpenAI:
    return server.sdk(key)


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_for_status(
    client: openai.OpenAI, thread_id: str, run_id: str, statuses: set[str], timeout: float = 10.0
) -> Any:
    def reached() -> Any:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        return run if run.status in statuses else None

    return wait_for(reached, timeout=timeout)


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class FakeFileSearch:
    """A stand-in for the retrieval branch's file_search: one cited excerpt per query."""

    type: ClassVar[str] = "file_search"

    def __init__(self, documents: dict[str, tuple[str, str]]) -> None:
        self.documents = documents  # query -> (file id, excerpt)
        self.invocations: list[ToolInvocation] = []

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        self.invocations.append(invocation)
        file_id, quote = self.documents[invocation.arguments["query"]]
        return ToolOutcome(
            output=f"[1] {quote}",
            step_details={
                "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
                "results": [
                    {
                        "file_id": file_id,
                        "file_name": f"{file_id}.txt",
                        "score": 0.9,
                        "content": [{"type": "text", "text": quote}],
                    }
                ],
            },
            citations=(Citation(file_id, quote),),
        )


class FakeCodeInterpreter:
    """A stand-in for the sandbox: "runs" the code and reports one created file."""

    type: ClassVar[str] = "code_interpreter"

    def __init__(self, output: str, created_file: str) -> None:
        self.output = output
        self.created_file = created_file
        self.invocations: list[ToolInvocation] = []

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        self.invocations.append(invocation)
        return ToolOutcome(
            output=self.output,
            step_details={
                "input": invocation.arguments["code"],
                "outputs": [{"type": "logs", "logs": self.output}],
            },
            created_file_ids=(self.created_file,),
        )
