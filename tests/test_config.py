"""Settings: YAML + environment, ${VAR} secrets, errors that name the bad key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portway.config import ConfigError, load_settings

EXAMPLE = """
master_key: ${PORTWAY_MASTER_KEY}
database_url: sqlite:///./.portway/portway.db
models:
  - name: smollm2-135m
    provider: local
  - name: gpt-4o-mini
    provider: openai
    model: gpt-4o-mini
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
  - name: claude
    provider: anthropic
    model: claude-sonnet-4-5
    api_key: ${ANTHROPIC_API_KEY:-none-set}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portway.yaml"
    path.write_text(text)
    return path


def test_defaults_without_config() -> None:
    settings = load_settings(None, environ={})
    assert settings.port == 8080 and settings.master_key is None
    assert [(m.name, m.provider) for m in settings.models] == [("smollm2-135m", "local")]


def test_example_config_reads_secrets_from_env(tmp_path: Path) -> None:
    env = {"PORTWAY_MASTER_KEY": "sk-m", "OPENAI_API_KEY": "sk-o"}
    settings = load_settings(write(tmp_path, EXAMPLE), environ=env)
    assert settings.master_key is not None and settings.master_key.get_secret_value() == "sk-m"
    openai_model = settings.models[1]
    assert openai_model.api_key is not None and openai_model.api_key.get_secret_value() == "sk-o"
    assert openai_model.upstream_model == "gpt-4o-mini"
    claude_key = settings.models[2].api_key
    assert claude_key is not None and claude_key.get_secret_value() == "none-set"
    assert "sk-o" not in repr(settings)


def test_unset_secret_becomes_null(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, EXAMPLE), environ={})
    assert settings.master_key is None
    assert settings.models[1].api_key is None


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9000\nhost: 0.0.0.0\n")
    settings = load_settings(path, environ={"PORTWAY_PORT": "9100"})
    assert settings.port == 9100 and settings.host == "0.0.0.0"


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9001\n")
    assert load_settings(None, environ={"PORTWAY_CONFIG": str(path)}).port == 9001


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models:\n  - name: x\n    provder: openai\n", "models[0].provder: unknown key"),
        ("models:\n  - name: x\n", "models[0].provider: Field required"),
        ("port: many\n", "port:"),
        ("models: []\n", "models: Value error, declare at least one model"),
        ("colour: blue\n", "colour: unknown key"),
        ("- a list\n", "must be a mapping"),
        ("port: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert fragment in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - name: x\n    provider: nonexistent\n")
    result = subprocess.run(
        [sys.executable, "-m", "portway", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown provider 'nonexistent'" in result.stderr
    assert "Traceback" not in result.stderr
