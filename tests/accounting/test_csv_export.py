"""Usage CSV exports: names a client or operator chose never open as spreadsheet formulas."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-csv"
HOSTILE = {
    '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
    "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\tpadded": "'\tpadded",
    "\rreturn": "'\rreturn",
    "plain-user": "plain-user",
}


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {"master_key": MASTER, "models": [fake_model("fake-gpt", fake_openai_server.base_url)]}
    )


def test_usage_csv_escapes_formula_cells(gateway: PortwayServer, fake_openai: FakeOpenAI) -> None:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        for user in HOSTILE:
            created = http.post("/v1/admin/keys", json={"name": "k", "user": user})
            assert created.status_code == 201, created.text
            client = gateway.sdk(created.json()["key"])
            client.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
            )
        response = http.get("/v1/admin/usage", params={"group_by": "user", "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert sorted(row["user"] for row in rows) == sorted(HOSTILE.values())
    assert all(int(row["requests"]) == 1 for row in rows)
