"""The README's configuration examples are valid configurations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portway.config import load_settings

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def test_readme_has_config_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_config_block_loads(block: str, tmp_path: Path) -> None:
    path = tmp_path / "portway.yaml"
    path.write_text(block)
    settings = load_settings(path, environ={"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "x"})
    assert settings.models
