"""The console over HTTP: sessions, CSRF, tenant isolation, key actions, usage and CSV."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.console.conftest import MASTER, csrf_of, login
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer


def test_root_redirects_to_the_console_and_the_console_to_its_login(
    console: PortwayServer,
) -> None:
    with httpx.Client(base_url=console.url) as http:
        root = http.get("/")
        assert root.status_code == 307
        assert root.headers["location"] == "/ui"
        page = http.get("/ui")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login"
        form = http.get("/ui/login")
        assert form.status_code == 200
        assert 'name="key"' in form.text


def test_login_sets_an_httponly_strict_cookie_that_holds_no_key(console: PortwayServer) -> None:
    with httpx.Client(base_url=console.url) as http:
        refused = http.post("/ui/login", data={"key": "sk-wrong"})
        assert refused.status_code == 401
        assert "not valid" in refused.text
        response = http.post("/ui/login", data={"key": MASTER})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        payload = base64.urlsafe_b64decode(value.split(".")[0] + "==")
        assert MASTER.encode() not in payload
        assert MASTER not in value
        overview = http.get("/ui")
        assert overview.status_code == 200
        assert "Overview" in overview.text
        assert "master key" in overview.text


def test_a_forged_or_tampered_cookie_is_not_a_session(console: PortwayServer) -> None:
    http = login(console, MASTER)
    value = http.cookies["portway_session"]
    body, mac = value.split(".")
    forged = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(body + "==").replace(b'"master"', b'"anonymous"')
    ).rstrip(b"=")
    with httpx.Client(base_url=console.url) as other:
        other.cookies.set("portway_session", f"{forged.decode()}.{mac}")
        assert other.get("/ui").status_code == 303


def test_writes_need_the_csrf_token_and_our_origin(console: PortwayServer) -> None:
    http = login(console, MASTER)
    csrf = csrf_of(http.get("/ui/keys").text)
    missing = http.post("/ui/keys", data={"name": "no-token"})
    assert missing.status_code == 403
    wrong = http.post("/ui/keys", data={"name": "bad", "csrf": "x" * 32})
    assert wrong.status_code == 403
    foreign = http.post(
        "/ui/keys",
        data={"name": "cross-site", "csrf": csrf},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    listed = http.get("/ui/keys").text
    assert "no-token" not in listed and "cross-site" not in listed


def test_checks_run_in_order_session_then_token_then_admin(console: PortwayServer) -> None:
    with httpx.Client(base_url=console.url) as signed_out:
        refused = signed_out.post("/ui/keys", data={"name": "signed-out"})
        assert refused.status_code == 303
        assert refused.headers["location"] == "/ui/login"
        assert signed_out.get("/ui/deployments/table").status_code == 204
    key = console.create_key(MASTER, name="order-of-checks")
    http = login(console, key["key"])
    csrf = csrf_of(http.get("/ui").text)
    assert http.post("/ui/keys", data={"name": "no-token"}).status_code == 403
    assert http.post("/ui/keys", data={"csrf": csrf, "name": "not-admin"}).status_code == 404
    assert http.get(f"/ui/keys/{key['id']}/edit").status_code == 404
    assert http.get("/ui/deployments/table").status_code == 204


def test_a_key_created_in_the_console_works_once_and_its_secret_is_shown_once(
    console: PortwayServer,
) -> None:
    http = login(console, MASTER)
    csrf = csrf_of(http.get("/ui/keys").text)
    created = http.post(
        "/ui/keys",
        data={
            "csrf": csrf,
            "name": "from-console",
            "team": "blue",
            "rpm": "100",
            "max_budget": "5",
        },
    )
    assert created.status_code == 200
    secret = created.text.split('id="new-secret">')[1].split("<")[0]
    assert secret.startswith("pw-")
    assert secret not in http.get("/ui/keys").text  # shown once, never listed
    reply = console.sdk(secret).chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "echo: hi"
    with console.admin(MASTER) as admin:
        keys = admin.get("/v1/admin/keys").json()["data"]
    key = next(k for k in keys if k["name"] == "from-console")
    assert key["team"] == "blue" and key["rpm"] == 100
    assert key["budget"]["max_budget"] == 5.0
    revoked = http.post(f"/ui/keys/{key['id']}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200
    with console.admin(MASTER) as admin:
        audit = admin.get("/v1/admin/audit", params={"order": "desc", "limit": 50}).json()
    actions = {(r["action"], r["subject"]) for r in audit["data"]}
    assert {("key.create", key["id"]), ("key.revoke", key["id"])} <= actions
    assert secret not in str(audit)
    with pytest.raises(openai.AuthenticationError):
        console.sdk(secret).chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "again"}]
        )


def test_rotate_and_limits_use_the_admin_key_service(console: PortwayServer) -> None:
    key = console.create_key(MASTER, name="rotating")
    http = login(console, MASTER)
    csrf = csrf_of(http.get("/ui/keys").text)
    edit = http.get(f"/ui/keys/{key['id']}/edit")
    assert edit.status_code == 200 and 'id="edit-key"' in edit.text
    updated = http.post(
        f"/ui/keys/{key['id']}",
        data={"csrf": csrf, "rpm": "7", "tpm": "", "models": "fake-gpt", "max_budget": "2.5"},
    )
    assert updated.status_code == 200
    rotated = http.post(f"/ui/keys/{key['id']}/rotate", data={"csrf": csrf})
    assert rotated.status_code == 200
    new_secret = rotated.text.split('id="new-secret">')[1].split("<")[0]
    assert new_secret != key["key"]
    with console.admin(MASTER) as admin:
        stored = admin.get(f"/v1/admin/keys/{key['id']}").json()
    assert stored["rpm"] == 7 and stored["models"] == ["fake-gpt"]
    assert stored["budget"]["max_budget"] == 2.5
    with pytest.raises(openai.AuthenticationError):
        console.sdk(key["key"]).models.list()
    assert console.sdk(new_secret).models.list().data


def test_bad_key_form_input_is_shown_not_a_500(console: PortwayServer) -> None:
    http = login(console, MASTER)
    csrf = csrf_of(http.get("/ui/keys").text)
    response = http.post("/ui/keys", data={"csrf": csrf, "rpm": "-3"})
    assert response.status_code == 400
    assert "rpm" in response.text


def test_a_virtual_key_sees_only_its_own_data(console: PortwayServer) -> None:
    mine = console.create_key(MASTER, name="tenant-a")
    theirs = console.create_key(MASTER, name="tenant-b")
    for key, text in ((mine, "from a"), (theirs, "from b")):
        console.sdk(key["key"]).chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": text}]
        )
    http = login(console, mine["key"])
    keys_page = http.get("/ui/keys").text
    assert mine["id"] in keys_page and theirs["id"] not in keys_page
    assert "Create a key" not in keys_page
    usage = http.get("/ui/usage", params={"group_by": "key", "key": theirs["id"]}).text
    table = usage[usage.index('id="usage-table"') :]
    assert mine["id"] in table and theirs["id"] not in table
    csv = http.get("/ui/usage.csv", params={"group_by": "key"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert mine["id"] in csv.text and theirs["id"] not in csv.text
    assert http.get("/ui/deployments").status_code == 404
    csrf = csrf_of(keys_page)
    assert http.post("/ui/keys", data={"csrf": csrf, "name": "x"}).status_code == 404
    assert http.post(f"/ui/keys/{theirs['id']}/revoke", data={"csrf": csrf}).status_code == 404
    with console.admin(MASTER) as admin:
        assert admin.get(f"/v1/admin/keys/{theirs['id']}").json()["status"] == "active"


def test_revoking_a_key_ends_its_console_sessions(console: PortwayServer) -> None:
    key = console.create_key(MASTER, name="short-lived")
    http = login(console, key["key"])
    assert http.get("/ui").status_code == 200
    with console.admin(MASTER) as admin:
        assert admin.post(f"/v1/admin/keys/{key['id']}/revoke").status_code == 200
    # The admin API's revoke clears this process's key cache: the session ends at once.
    assert http.get("/ui").status_code == 303
    with httpx.Client(base_url=console.url) as fresh:
        assert fresh.post("/ui/login", data={"key": key["key"]}).status_code == 401


def test_the_playground_calls_the_api_with_the_session_only_with_the_csrf_header(
    console: PortwayServer,
) -> None:
    key = console.create_key(MASTER, name="playground")
    http = login(console, key["key"])
    csrf = csrf_of(http.get("/ui/playground").text)
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "from the page"}]}
    assert http.post("/v1/chat/completions", json=body).status_code == 401
    answer = http.post("/v1/chat/completions", json=body, headers={"x-portway-csrf": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "echo: from the page"
    # The session does not open the rest of the API, even with the header.
    assert http.get("/v1/admin/keys", headers={"x-portway-csrf": csrf}).status_code == 401
    usage = http.get("/ui/usage", params={"group_by": "key"}).text
    assert key["id"] in usage


def test_the_sketcher_page_works_as_the_signed_in_principal(console: PortwayServer) -> None:
    key = console.create_key(MASTER, name="sketcher")
    http = login(console, key["key"])
    page = http.get("/ui/sketch")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    body = {"description": "a URL shortener", "model": "fake-gpt"}
    assert http.post("/v1/sketches", json=body).status_code == 401
    created = http.post("/v1/sketches", json=body, headers={"x-portway-csrf": csrf})
    assert created.status_code == 200, created.text
    # It is the key's own sketch: the key sees it, another key gets a 404.
    mine = console.sdk(key["key"]).get(f"/sketches/{created.json()['id']}", cast_to=object)
    assert mine["id"] == created.json()["id"]
    other = console.create_key(MASTER, name="someone-else")
    with pytest.raises(openai.NotFoundError):
        console.sdk(other["key"]).get(f"/sketches/{created.json()['id']}", cast_to=object)
    # Signed out, the page carries no token and asks for a key.
    assert 'name="portway-csrf"' not in httpx.get(f"{console.url}/ui/sketch").text


def test_overview_and_usage_show_the_ledger(console: PortwayServer) -> None:
    client = console.sdk(MASTER)
    for n in range(3):
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": f"count {n}"}]
        )
    http = login(console, MASTER)
    overview = http.get("/ui", params={"window": "1h"})
    assert overview.status_code == 200
    assert 'id="overview-data"' in overview.text
    assert "content-security-policy" in overview.headers
    data = overview.text.split('id="overview-data">')[1].split("</script>")[0]
    assert '"rps"' in data and '"p99"' in data
    usage = http.get("/ui/usage", params={"group_by": "model"})
    assert "fake-gpt" in usage.text
    csv = http.get("/ui/usage.csv", params={"group_by": "model"}).text
    assert csv.splitlines()[0].startswith("model,requests")
    assert any(line.startswith("fake-gpt,") for line in csv.splitlines())


def test_logout_needs_the_token_and_clears_the_cookie(console: PortwayServer) -> None:
    http = login(console, MASTER)
    csrf = csrf_of(http.get("/ui").text)
    assert http.post("/ui/logout").status_code == 403
    response = http.post("/ui/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert (
        'portway_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in (response.headers["set-cookie"])
    )


def test_static_files_are_served_from_the_package(console: PortwayServer) -> None:
    with httpx.Client(base_url=console.url) as http:
        for path in (
            "/ui/static/vendor/htmx-2.0.11.min.js",
            "/ui/static/vendor/uPlot-1.6.32.iife.min.js",
            "/ui/static/console.css",
        ):
            response = http.get(path)
            assert response.status_code == 200, path
            assert len(response.content) > 1000


def test_an_open_server_hands_out_a_session_without_a_login(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI
) -> None:
    server = start_portway({"models": [fake_model("fake-gpt", fake_openai_server.base_url)]})
    with httpx.Client(base_url=server.url) as http:
        page = http.get("/ui/keys")
        assert page.status_code == 200
        assert "portway_session" in http.cookies
        assert "open server" in page.text
        csrf = csrf_of(page.text)
        created = http.post("/ui/keys", data={"csrf": csrf, "name": "on-open-server"})
        assert created.status_code == 200
        assert 'id="new-secret"' in created.text


def test_keys_are_listed_newest_first_fifty_a_page(console: PortwayServer) -> None:
    created = [console.create_key(MASTER, name=f"paged-{n}")["id"] for n in range(52)]
    http = login(console, MASTER)
    first = http.get("/ui/keys").text
    assert first.count("data-key-id=") == 50
    assert first.index(created[-1]) < first.index(created[-2])  # newest first
    assert 'href="/ui/keys?page=1"' in first
    second = http.get("/ui/keys", params={"page": "1"}).text
    assert created[0] in second and created[0] not in first
    assert 'href="/ui/keys?page=0"' in second
