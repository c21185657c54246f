"""Provider options are typed: each provider's ``Options`` model is checked at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portway.config import ConfigError, Settings
from portway.providers.local import LocalOptions, LocalProvider
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from tests.fakes.embedder import ConceptEmbedder


def catalog_of(*models: dict[str, object]) -> ModelCatalog:
    settings = Settings.model_validate({"models": list(models)})
    registry = ProviderRegistry(extra={"concepts": ConceptEmbedder})
    return ModelCatalog.from_configs(settings.models, registry)


OPENAI = {"name": "gpt", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"n_ctxx": 512}, "models[1].options.n_ctxx: unknown key"),
        ({"n_threads": "many"}, "models[1].options.n_threads: Input should be a valid integer"),
        ({"n_ctx": 0}, "models[1].options.n_ctx: Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_local_option_names_its_path(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_of(OPENAI, {"name": "smol", "provider": "local", "options": options})
    assert fragment in str(caught.value)


def test_a_provider_without_options_rejects_any() -> None:
    """Before, options an OpenAI-compatible deployment cannot use were silently ignored."""
    with pytest.raises(ConfigError, match=r"models\[0\]\.options\.temperature: unknown key"):
        catalog_of({**OPENAI, "options": {"temperature": 0.2}})


def test_options_reach_the_provider_typed() -> None:
    catalog = catalog_of(
        {"name": "smol", "provider": "local", "options": {"n_ctx": "512", "embedding": True}},
        {"name": "broken", "provider": "concepts", "options": {"fail": True}},
    )
    local, concepts = (d.provider for d in catalog.deployments)
    assert isinstance(local, LocalProvider) and isinstance(local.options, LocalOptions)
    assert (local.options.n_ctx, local.options.embedding) == (512, True)
    assert not local.capabilities.chat  # an embedding model
    assert isinstance(concepts, ConceptEmbedder) and concepts.options.fail is True
    assert not local.billed and concepts.billed


def test_serve_reports_a_bad_option_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text("models:\n  - name: x\n    provider: local\n    options: {threads: 2}\n")
    result = subprocess.run(
        [sys.executable, "-m", "portway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "models[0].options.threads: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
