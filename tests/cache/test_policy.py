"""Cache policies from settings and request headers; cache settings validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portway.cache.policy import decide, resolve_policies
from portway.config import CacheConfig, ConfigError, load_settings
from portway.errors import InvalidRequestError
from portway.protocol.chat import ChatCompletionRequest


def request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def test_overrides_apply_in_file_order_and_globs_match() -> None:
    config = CacheConfig.model_validate(
        {
            "enabled": True,
            "ttl": 100,
            "semantic": {"threshold": 0.8},
            "models": {
                "gpt-*": {"ttl": 10, "semantic": True},
                "gpt-4o": {"mode": "always", "semantic_threshold": 0.95},
                "local": {"enabled": False},
            },
        }
    )
    policies = resolve_policies(config, ["gpt-4o", "gpt-3", "local", "other"])
    assert (policies["gpt-4o"].ttl, policies["gpt-4o"].mode) == (10, "always")
    assert (policies["gpt-4o"].semantic, policies["gpt-4o"].threshold) == (True, 0.95)
    assert (policies["gpt-3"].mode, policies["gpt-3"].threshold) == ("deterministic", 0.8)
    assert not policies["local"].enabled and not policies["local"].semantic
    assert (policies["other"].ttl, policies["other"].semantic) == (100, False)


def test_globally_disabled_cache_disables_every_model() -> None:
    config = CacheConfig.model_validate({"models": {"m": {"enabled": True, "semantic": True}}})
    assert not resolve_policies(config, ["m"])["m"].enabled


def test_request_ttl_is_bounded_by_max_ttl() -> None:
    config = CacheConfig.model_validate({"enabled": True, "ttl": 50})
    policy = resolve_policies(config, ["m"])["m"]
    deterministic = request(seed=1)
    assert decide(policy, deterministic, {"x-portway-cache-ttl": "500"}, 100).ttl == 100
    assert decide(policy, deterministic, {"x-portway-cache-ttl": "5"}, 100).ttl == 5
    assert decide(policy, deterministic, {}, 20).ttl == 20
    with pytest.raises(InvalidRequestError):
        decide(policy, deterministic, {"x-portway-cache-ttl": "inf"}, None)


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        ({"models": {"nope": {"ttl": 1}}}, "cache.models.nope: matches no declared model"),
        ({"semantic": {"embedding_model": "ghost"}}, "cache.semantic.embedding_model"),
        ({"enabled": True, "backend": "redis"}, "needs redis_url"),
        ({"ttl": 0}, "cache.ttl"),
        ({"backend": "memcached"}, "cache.backend"),
        ({"semantic": {"threshold": 1.5}}, "cache.semantic.threshold"),
        ({"surprise": 1}, "cache.surprise: unknown key"),
    ],
)
def test_bad_cache_settings_name_the_key(
    tmp_path: Path, cache: dict[str, Any], message: str
) -> None:
    path = tmp_path / "portway.yaml"
    path.write_text(yaml.safe_dump({"cache": cache}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert message in str(caught.value)
