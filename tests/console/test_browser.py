"""The console in a real browser (Playwright driving Debian's Chromium).

Each test saves a screenshot of the page it checks into ``tests/artifacts/console``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.console.conftest import MASTER
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


@pytest.fixture
def page(browser: Any, console: PortwayServer) -> Any:
    context = browser.new_context(base_url=console.url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Any, key: str) -> None:
    page.goto("/ui/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui")


def traffic(console: PortwayServer, key: str, count: int) -> None:
    client = console.sdk(key)
    for n in range(count):
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": f"load {n}"}]
        )


def test_login_and_the_overview_charts_render_with_data(
    page: Any, console: PortwayServer, artifacts: Path
) -> None:
    traffic(console, MASTER, 6)
    page.goto("/")
    page.wait_for_url("**/ui/login")
    page.screenshot(path=str(artifacts / "login.png"))
    sign_in(page, MASTER)
    page.click("a[href='/ui?window=1h']")
    page.wait_for_selector("[data-chart='rps'][data-rendered='true']")
    for name in ("rps", "latency", "error_rate", "tokens", "spend"):
        figure = page.locator(f"[data-chart='{name}']")
        assert figure.get_attribute("data-rendered") == "true", name
        assert figure.locator("canvas").count() == 1, name
    assert int(page.locator("[data-stat='requests']").inner_text().replace(",", "")) >= 6
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)


def test_create_a_key_use_it_revoke_it_and_see_401(
    page: Any, console: PortwayServer, artifacts: Path
) -> None:
    sign_in(page, MASTER)
    page.goto("/ui/keys")
    page.click("details.create > summary")
    page.fill("#create-key input[name=name]", "browser-key")
    page.fill("#create-key input[name=team]", "web")
    page.fill("#create-key input[name=max_budget]", "10")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("pw-")
    page.screenshot(path=str(artifacts / "keys-created.png"), full_page=True)
    client = console.sdk(secret)
    reply = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "from the sdk"}]
    )
    assert reply.choices[0].message.content == "echo: from the sdk"

    page.goto("/ui/keys")
    assert secret not in page.content()
    page.locator("tr", has_text="browser-key").locator("text=Edit").click()
    page.fill("#edit-key input[name=rpm]", "120")
    page.screenshot(path=str(artifacts / "key-edit.png"), full_page=True)
    page.click("#edit-key button[type=submit]")
    page.wait_for_selector("text=Key updated")
    assert "120 rpm" in page.locator("tr", has_text="browser-key").inner_text()
    row = page.locator("tr", has_text="browser-key")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    page.wait_for_selector("text=Key revoked")
    assert page.locator("tr", has_text="browser-key").locator(".badge").inner_text() == "revoked"
    page.screenshot(path=str(artifacts / "keys-revoked.png"), full_page=True)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "after revoke"}]
        )


def test_deployments_and_usage_pages(page: Any, console: PortwayServer, artifacts: Path) -> None:
    traffic(console, MASTER, 2)
    sign_in(page, MASTER)
    page.goto("/ui/deployments")
    page.wait_for_selector("tr[data-deployment]")
    assert page.locator("tr[data-deployment] .badge").first.inner_text() == "closed"
    page.screenshot(path=str(artifacts / "deployments.png"), full_page=True)
    page.goto("/ui/usage?group_by=model&range=today")
    assert page.locator("#usage-table tbody tr", has_text="fake-gpt").count() == 1
    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename == "usage.csv"
    page.screenshot(path=str(artifacts / "usage.png"), full_page=True)


def test_filter_the_request_log_and_open_an_entry(
    page: Any, console: PortwayServer, fake_openai: FakeOpenAI, artifacts: Path
) -> None:
    traffic(console, MASTER, 3)
    fake_openai.script(Fail(status=400, message="the upstream refused this one"))
    with pytest.raises(openai.BadRequestError):
        traffic(console, MASTER, 1)
    sign_in(page, MASTER)
    page.goto("/ui/requests")
    rows = page.locator("#request-table tbody tr[data-request-id]")
    rows.first.wait_for()
    everything = rows.count()
    assert everything >= 4
    page.select_option("select[name=status]", "error")
    page.fill("#request-filters input[name=model]", "fake-gpt")
    page.click("#request-filters button[type=submit]")
    page.wait_for_url("**status=error**")
    failed = page.locator("#request-table tbody tr[data-request-id]")
    assert 1 <= failed.count() < everything
    for badge in failed.locator(".badge.bad").all_inner_texts():
        assert int(badge) >= 400
    assert failed.locator(".badge.bad").count() == failed.count()
    page.screenshot(path=str(artifacts / "request-log.png"), full_page=True)
    failed.first.locator("a").click()
    page.wait_for_url("**/ui/requests/req*")
    assert "fake-gpt" in page.locator(".kv").inner_text()
    assert "refused" in page.locator(".alert.error").inner_text()
    page.screenshot(path=str(artifacts / "request-detail.png"), full_page=True)


def test_a_streamed_playground_chat(
    page: Any, console: PortwayServer, fake_openai: FakeOpenAI, artifacts: Path
) -> None:
    key = console.create_key(MASTER, name="playground-user")
    fake_openai.script(Reply(pieces=["Hello", " from", " the", " stream"], chunk_delay=0.05))
    sign_in(page, key["key"])
    page.goto("/ui/playground")
    assert page.locator("#pg-model").input_value() == "fake-gpt"
    page.fill("#pg-input", "Say hello")
    page.click("#pg-send")
    answer = page.locator(".msg.assistant[data-done='true']")
    answer.wait_for()
    assert answer.locator(".text").inner_text() == "Hello from the stream"
    assert "tokens" in page.locator("#pg-meta").inner_text()
    assert fake_openai.requests[-1].body["stream"] is True

    # Tools and JSON mode go to the upstream as set; a streamed tool call is shown.
    fake_openai.script(Reply(tool_calls=[WEATHER_CALL]))
    page.fill("textarea[name=tools]", json.dumps([WEATHER_TOOL]))
    page.check("input[name=json_mode]")
    page.fill("#pg-input", "Weather in Paris?")
    page.click("#pg-send")
    page.locator(".msg.assistant[data-done='true']").nth(1).wait_for()
    assert "get_weather" in page.locator(".tool-call").inner_text()
    sent = fake_openai.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    page.screenshot(path=str(artifacts / "playground.png"), full_page=True)
    with console.admin(MASTER) as admin:
        usage = admin.get("/v1/admin/usage", params={"key": key["id"]}).json()["data"]
    assert usage[0]["requests"] == 2  # the page's calls went through the pipeline as the key
