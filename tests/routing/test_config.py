"""The `router:` settings: durations, typed entries, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.config import ConfigError, Settings, load_settings
from portway.routing.config import GroupRouteConfig, VirtualModelConfig, parse_duration

MODELS = [
    {"name": "chat", "provider": "openai", "base_url": "http://a/v1"},
    {"name": "big", "provider": "openai", "base_url": "http://b/v1"},
]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        (" 1.5s ", 1.5),
        (2, 2.0),
        (0.25, 0.25),
        ("10", 10.0),
    ],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-1s", "0", 0, "1d", True, "1.2.3s", None])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def _load(tmp_path: Path, yaml_text: str) -> Settings:
    path = tmp_path / "portway.yaml"
    path.write_text(yaml_text)
    return load_settings(path, environ={})


def test_full_router_yaml(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        """
models:
  - {name: chat, provider: openai, base_url: "http://a/v1", weight: 3}
  - {name: chat, provider: openai, base_url: "http://b/v1", weight: 1}
  - {name: big, provider: openai, base_url: "http://c/v1", context_window: 200000}
router:
  "*": {retries: 1}
  chat:
    strategy: least-busy
    retries: 2
    backoff: {base: 250ms, max: 8s, retry_after_cap: 30s}
    timeout: 30s
    first_byte_timeout: 5s
    deadline: 2m
    fallbacks: [big]
    context_window_fallbacks: [big]
    degrade: {message: "The assistant is busy; please try again shortly."}
    breaker: {consecutive_failures: 5, failure_rate: 0.5, window: 30s, cooldown: 10s}
    health_check: {interval: 30s}
  auto:
    classifier: {model: chat, timeout: 2s}
    rules:
      - when: {prompt_tokens_over: 6000}
        use: big
      - when: {has_tools: true}
        use: chat
      - when: {tier: premium}
        use: big
      - when: {classified_as: complex}
        use: big
      - use: chat
""",
    )
    chat = settings.router["chat"]
    assert isinstance(chat, GroupRouteConfig)
    assert (chat.timeout, chat.first_byte_timeout, chat.deadline) == (30.0, 5.0, 120.0)
    assert chat.backoff.base == 0.25 and chat.breaker.cooldown == 10.0
    auto = settings.router["auto"]
    assert isinstance(auto, VirtualModelConfig)
    assert auto.rules[2].when is not None and auto.rules[2].when.tier == ["premium"]
    assert isinstance(settings.router["*"], GroupRouteConfig)


@pytest.mark.parametrize(
    ("router", "message"),
    [
        (
            {"chat": {"strategy": "round-robin"}},
            "router.chat.strategy: Value error, unknown strategy",
        ),
        ({"chat": {"retries": -1}}, "router.chat.retries"),
        ({"chat": {"timeout": "soon"}}, "router.chat.timeout"),
        ({"chat": {"retires": 2}}, "router.chat.retires: unknown key"),
        ({"chat": {"fallbacks": ["gpt-9"]}}, "router.chat.fallbacks[0]: 'gpt-9' is not a declared"),
        ({"chat": {"fallbacks": ["chat"]}}, "router.chat.fallbacks[0]: a group cannot fall back"),
        ({"nope": {"retries": 1}}, "router.nope: 'nope' is not a declared model group"),
        ({"auto": {"rules": [{"use": "gpt-9"}]}}, "router.auto.rules[0].use: 'gpt-9'"),
        (
            {"auto": {"rules": [{"when": {"bogus": 1}, "use": "big"}, {"use": "chat"}]}},
            "router.auto.rules[0].when.bogus: unknown key",
        ),
        ({"chat": {"rules": [{"use": "big"}]}}, "router.chat: a virtual model"),
        (
            {"auto": {"rules": [{"when": {"has_tools": True}, "use": "big"}]}},
            "the last rule must have no `when`",
        ),
        (
            {"auto": {"rules": [{"when": {}, "use": "big"}, {"use": "chat"}]}},
            "at least one condition",
        ),
        (
            {
                "auto": {
                    "rules": [{"when": {"matches": "(unclosed"}, "use": "big"}, {"use": "chat"}]
                }
            },
            "not a valid regular expression",
        ),
        (
            {
                "auto": {
                    "rules": [{"when": {"classified_as": "complex"}, "use": "big"}, {"use": "chat"}]
                }
            },
            "no `classifier` is configured",
        ),
    ],
)
def test_bad_router_config_names_the_key(tmp_path: Path, router, message) -> None:
    import yaml

    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, yaml.safe_dump({"models": MODELS, "router": router}))
    assert message in str(raised.value)


def test_router_is_not_read_from_the_environment() -> None:
    settings = load_settings(None, environ={"PORTWAY_ROUTER": "nonsense"})
    assert settings.router == {}
