"""The page at /ui/sketch in a real browser: type, generate, see the SVG, click a node,
revise it, download a format. Debian's chromium driven by Playwright (no download)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SERVICES_REQUIRED, PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.sketch.support import MODEL, narrative, node, reply, shortener

CHROMIUM = os.environ.get("PORTWAY_TEST_CHROMIUM", "/usr/bin/chromium")
MASTER = "sk-page"


def _unavailable(reason: str) -> None:
    if SERVICES_REQUIRED:
        pytest.fail(f"{reason} (PORTWAY_TEST_SERVICES=required)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model(MODEL, fake_openai_server.base_url)],
            "sketch": {"poll_interval_seconds": 0.05},
        }
    )


def test_type_generate_click_revise_and_download(
    browser: Any, server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    from playwright.sync_api import expect

    revised = copy.deepcopy(shortener())
    revised["nodes"].append(node("warm", "cache", "Warm cache", "data", technology="Redis"))
    revised["edges"].append(
        {"from": "cache", "to": "warm", "protocol": "RESP", "mode": "async", "data": ""}
    )
    fake_openai.script(
        reply(shortener()),
        reply(narrative()),
        reply({"answer": "Added a warm cache behind it.", "graph": revised}),
        reply(narrative()),
    )
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/ui/sketch")
    page.fill("#api-key", MASTER)
    page.dispatch_event("#api-key", "change")
    page.fill("#description", "a URL shortener with analytics")
    page.click("#generate")
    page.wait_for_selector("#diagram svg g.node", timeout=20_000)
    assert page.locator("#diagram svg g.node").count() == len(shortener()["nodes"])
    for item in shortener()["nodes"]:
        assert item["label"] in page.inner_text("#diagram")
    expect(page.locator("#status")).to_contain_text("version 1")
    expect(page.locator("#design")).to_contain_text("## Components")
    # Click a component: its details show, then ask for a change to it.
    page.click("#diagram svg g.node[data-node-id='cache']")
    assert page.inner_text("#node-title") == "Link cache"
    assert "Redis" in page.inner_text("#node-details")
    page.fill("#revise-message", "add a warm cache behind this one")
    page.click("#revise")
    page.wait_for_selector("#diagram svg g.node[data-node-id='warm']", timeout=20_000)
    expect(page.locator("#status")).to_contain_text("version 2")
    expect(page.locator("#answer")).to_have_text("Added a warm cache behind it.")
    revise_call = fake_openai.requests[2].body["messages"][-1]["content"]
    assert "pointing at node 'cache'" in revise_call
    # Download a format.
    with page.expect_download() as download:
        page.click("#downloads a[data-format='json']")
    path = download.value.path()
    assert download.value.suggested_filename == "graph.json"
    with open(path) as handle:
        assert json.load(handle) == revised
    with page.expect_download() as svg_download:
        page.click("#downloads a[data-format='svg']")
    assert svg_download.value.suggested_filename == "diagram.svg"
    assert errors == []
    page.close()


def test_the_page_shows_an_api_error(browser: Any, server: PortwayServer) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/ui/sketch")
    page.fill("#api-key", "wrong-key")
    page.fill("#description", "anything")
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "Incorrect API key" in page.inner_text("#error")
    assert page.locator("#diagram svg").count() == 0
    page.close()
