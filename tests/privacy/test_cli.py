"""`portway keys create --retention`, `portway users delete-data`, `portway retention purge`:
straight to the database, each audited as the actor ``cli``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portway.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "portway.yaml"
    path.write_text(
        f"database_url: sqlite:///{tmp_path / 'portway.db'}\n"
        f"server_key_file: {tmp_path / 'server.key'}\n"
        f"files: {{storage_dir: {tmp_path / 'files'}}}\n"
    )
    return str(path)


def test_privacy_commands_are_audited(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--user", "ada", "--retention", "none", "--config", config]) == 0
    key = json.loads(capsys.readouterr().out)
    assert key["retention"] == "none" and key["no_store"] is True

    assert main(["users", "delete-data", "ada", "--config", config]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["user"] == "ada" and summary["pending"] == 0
    assert set(summary["deleted"].values()) == {0}

    assert main(["retention", "purge", "--config", config]) == 0
    capsys.readouterr()
    assert main(["audit", "export", "--config", config]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["action"], r["actor"]) for r in exported] == [
        ("key.create", "cli"),
        ("user_data.delete", "cli"),
        ("retention.purge", "cli"),
    ]
    assert exported[1]["subject"] == "ada"
    assert main(["audit", "verify", "--config", config]) == 0


def test_a_bad_retention_is_a_config_error(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--retention", "forever", "--config", config]) == 2
    assert "--retention" in capsys.readouterr().err
