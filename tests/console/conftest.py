"""Fixtures of the console tests: a Portway with a master key in front of the fake upstream,
and (for the browser tests) Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model, service_unavailable
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-console-master"
# Debian's package; Playwright never downloads a browser here.
CHROMIUM = os.environ.get("PORTWAY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"


@pytest.fixture(scope="module")
def console(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model(
                    "fake-gpt", fake_openai_server.base_url, pricing={"input": 2.0, "output": 8.0}
                )
            ],
        }
    )


def login(server: PortwayServer, key: str) -> httpx.Client:
    """An HTTP client holding a console session for ``key``."""
    http = httpx.Client(base_url=server.url, follow_redirects=False)
    response = http.post("/ui/login", data={"key": key})
    assert response.status_code == 303, response.text
    return http


def csrf_of(html: str) -> str:
    marker = 'name="portway-csrf" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium via Playwright, or a skip (a failure under PORTWAY_TEST_SERVICES=required)."""
    if shutil.which(CHROMIUM) is None:
        service_unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        # Root (as here and in CI) cannot use Chromium's own sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
