"""Settings and wiring: the retrieval keys validate, and both built-in tools are registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.app import create_app
from portway.assistants.code_interpreter import CodeInterpreterTool
from portway.config import ConfigError, Settings, load_settings
from portway.retrieval.file_search import FileSearchTool

MODELS = """
models:
  - name: m
    provider: openai
    base_url: http://127.0.0.1:9/v1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portway.yaml"
    path.write_text(MODELS + text)
    return path


def test_retrieval_settings_name_the_bad_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retrieval: .*chunk_overlap_tokens"):
        load_settings(
            write(tmp_path, "retrieval: {chunk_size_tokens: 200, chunk_overlap_tokens: 150}"), {}
        )
    with pytest.raises(ConfigError, match=r"files.max_bytes"):
        load_settings(write(tmp_path, "files: {max_bytes: 0}"), {})
    with pytest.raises(ConfigError, match=r"code_interpreter.network_isolation"):
        load_settings(write(tmp_path, "code_interpreter: {network_isolation: auto}"), {})
    with pytest.raises(ConfigError, match=r"max_sessions must be at least max_concurrent"):
        load_settings(write(tmp_path, "code_interpreter: {max_concurrent: 4, max_sessions: 2}"), {})
    settings = load_settings(
        write(
            tmp_path,
            "files: {storage_dir: /srv/files, max_bytes: 1000}\n"
            "retrieval: {embedding_model: m, chunk_size_tokens: 400, chunk_overlap_tokens: 100}\n"
            "code_interpreter: {cpu_seconds: 3, site_packages: true}\n",
        ),
        {},
    )
    assert settings.files.storage_dir == "/srv/files"
    assert settings.retrieval.embedding_model == "m"
    assert settings.code_interpreter.cpu_seconds == 3


def test_unknown_embedding_model_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "retrieval: {embedding_model: nope}"), {})
    with pytest.raises(ConfigError, match=r"retrieval\.embedding_model"):
        create_app(settings)


def test_services_register_both_builtin_tools(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "models": [{"name": "m", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "database_url": f"sqlite:///{tmp_path}/p.db",
        }
    )
    tools = create_app(settings).state.services.builtin_tools
    assert set(tools) == {"file_search", "code_interpreter"}
    assert isinstance(tools["file_search"], FileSearchTool)
    assert isinstance(tools["code_interpreter"], CodeInterpreterTool)
    disabled = settings.model_copy(
        update={"code_interpreter": settings.code_interpreter.model_copy(update={"enabled": False})}
    )
    assert set(create_app(disabled).state.services.builtin_tools) == {"file_search"}
