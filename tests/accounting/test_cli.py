"""`portway keys|budgets|usage` against the database a running server uses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from portway.cli import main
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.storage import sqlite_url

MASTER = "sk-cli-master"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_key_lifecycle_through_the_cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    start_portway: PortwayFactory,
    fake_openai: FakeOpenAI,
) -> None:
    database_url = sqlite_url(tmp_path)
    monkeypatch.setenv("PORTWAY_DATABASE_URL", database_url)
    server = start_portway(
        {
            "master_key": MASTER,
            "database_url": database_url,
            "keys": {"cache_ttl_seconds": 0.2},
            "ledger": {"durability": "commit"},  # the CLI reads the database right after
            "models": [fake_model("fake-gpt", fake_openai.base_url)],
        }
    )

    created = json.loads(
        run(capsys, "keys", "create", "--user", "carol", "--team", "ops", "--budget", "2.5")
    )
    key_id, secret = created["id"], created["key"]
    assert created["budget"]["max_budget"] == 2.5 and created["budget"]["period"] == "monthly"

    client = server.sdk(secret)
    messages = [{"role": "user", "content": "hi"}]
    assert client.chat.completions.create(model="fake-gpt", messages=messages).choices

    listing = run(capsys, "keys", "list", "--team", "ops")
    assert key_id in listing and created["prefix"] in listing and secret not in listing
    shown = json.loads(run(capsys, "keys", "show", key_id))
    assert shown["status"] == "active" and "key" not in shown

    usage = run(capsys, "usage", "--group-by", "key,model")
    assert key_id in usage and "fake-gpt" in usage
    csv_text = run(capsys, "usage", "--group-by", "user", "--format", "csv")
    assert csv_text.splitlines()[1].startswith("carol,1,")

    rotated = json.loads(run(capsys, "keys", "rotate", key_id))
    revoked = json.loads(run(capsys, "keys", "revoke", key_id))
    assert rotated["key"] != secret and revoked["status"] == "revoked"
    time.sleep(0.3)  # the server's key cache TTL
    for stale in (secret, rotated["key"]):
        stale_client = server.sdk(stale)
        with pytest.raises(openai.AuthenticationError):
            stale_client.chat.completions.create(model="fake-gpt", messages=messages)

    budget = json.loads(run(capsys, "budgets", "set", "team", "ops", "10", "--period", "weekly"))
    assert budget == {**budget, "scope": "team", "subject": "ops", "max_budget": 10.0}
    assert main(["keys", "show", "key_missing"]) == 1
