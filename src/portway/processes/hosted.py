"""The workers' settings when a model host runs their in-process models.

Each hosted deployment becomes an OpenAI-compatible one pointing at the host, keeping
what routing, budgets and context fitting read from it: its public name, weight,
priority, limits, price (free unless configured: the model runs on this machine), the
host-reported context window and output cap, tools and JSON-schema support, and
``prefill`` (true unless configured false), so a cut stream still resumes on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portway.config import ModelConfig, PriceConfig, Settings
from portway.processes.model_host import OUTPUT_CAP

# What the OpenAI-compatible provider accepts from a hosted deployment's own entry.
_KEPT = (
    "name",
    "weight",
    "priority",
    "tags",
    "rpm",
    "tpm",
    "timeout",
    "connect_timeout",
    "context",
    "guardrails",
)


def hosted_model(
    original: ModelConfig, model_id: str, base_url: str, token: str, abilities: Mapping[str, Any]
) -> ModelConfig:
    """``original`` as served by the model host at ``base_url``."""
    kept = {field: getattr(original, field) for field in _KEPT}
    return ModelConfig.model_validate(
        {
            **kept,
            "provider": "openai",
            "model": model_id,
            "base_url": base_url,
            "api_key": token,
            "context_window": abilities.get("context_window"),
            "max_output_tokens": abilities.get("max_output_tokens") or abilities.get(OUTPUT_CAP),
            "supports_tools": bool(abilities.get("tools")),
            "supports_json_schema": bool(abilities.get("json_schema")),
            "supports_vision": bool(abilities.get("vision")),
            "supports_completions": bool(abilities.get("completions")),
            "prefill": original.prefill is not False,
            # The host keeps each tenant's prompts in a prefix cache of their own.
            "cache_salt": True,
            "pricing": original.pricing or PriceConfig(),
        }
    )


def worker_settings(
    settings: Settings,
    *,
    workers: int,
    base_url: str | None = None,
    token: str = "",
    hosted: Mapping[int, tuple[str, Mapping[str, Any]]] | None = None,
) -> Settings:
    """What each of ``workers`` workers runs: ``hosted`` maps a position in
    ``settings.models`` to its model id at the host and the abilities it reported."""
    models = list(settings.models)
    for index, (model_id, abilities) in (hosted or {}).items():
        assert base_url is not None
        models[index] = hosted_model(models[index], model_id, base_url, token, abilities)
    server = settings.server.model_copy(update={"workers": workers})
    return settings.model_copy(update={"models": models, "server": server})
