"""The semantic-hit guard on its own: which features it reads, how it compares, what it costs."""

from __future__ import annotations

import pytest

from portway.cache.semantic.guard import PromptFeatures, prompt_features
from portway.config import SemanticCacheConfig

LIMIT = SemanticCacheConfig().max_prompt_chars


def features(text: str) -> PromptFeatures:
    found = prompt_features(text, LIMIT)
    assert found is not None
    return found


def conflict(first: str, second: str) -> str | None:
    return features(first).conflict(features(second))


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Convert 12 miles to km", ("12",)),
        ("Convert 12.0 miles to km", ("12",)),
        ("Convert twelve miles to km", ("12",)),
        ("Pay $1,000 now", ("1000",)),
        ("two hundred and fifty-three cats", ("253",)),
        ("two thousand five hundred and one", ("2501",)),
        ("one, two, three", ("1", "2", "3")),
        ("the 3rd and the twentieth", ("3", "20")),
        ("a 10-year-old at -40 degrees", ("10", "-40")),
        ("Python 3.11.2 at 9:30", ("3.11.2", "9:30")),
        ("Sort [3, 1, 2]", ("3", "1", "2")),
    ],
)
def test_numbers_are_normalised_in_order(text: str, numbers: tuple[str, ...]) -> None:
    assert features(text).numbers == numbers


def test_units_currencies_and_polar_words_are_terms() -> None:
    assert features("What's 15% of $80?").terms == ("%", "usd")
    assert features("What is 15 percent of 80 dollars?").terms == ("%", "usd")
    assert features("Convert 10 kilometres to mi").terms == ("km", "mi")
    assert features("Which is the largest, or the tallest?").terms == ("max", "max")
    assert features("How do I turn off dark mode?").terms == ("off",)


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("Convert 10 miles to kilometers.", "Convert 12 miles to kilometers.", "numbers"),
        ("Convert 10 miles to kilometers.", "Convert 10 kilometers to miles.", "terms"),
        ("Convert 100 USD to EUR.", "Convert 100 EUR to USD.", "terms"),
        ("Compare TCP with UDP", "Compare UDP with TCP", "entities"),
        ('Define "ephemeral".', 'Define "ubiquitous".', "quotes"),
        ("Reverse 'hello world'.", "Reverse 'hello there'.", "quotes"),
        ("Write a poem that rhymes.", "Write a poem that doesn't rhyme.", "negations"),
        ("Give me a recipe with eggs.", "Give me a recipe without eggs.", "negations"),
        ("Who is the CEO of Stripe?", "Who is the CEO of Shopify?", "entities"),
        ("who is the ceo of tesla", "who is the ceo of netflix", "terms"),
        ("Tell me about Barack Obama.", "Tell me about Joe Biden.", "entities"),
        ("what is the capital of spain", "what is the capital of portugal", "terms"),
        ("What does os.path.join do?", "What does os.path.split do?", "entities"),
        ("Mail john@example.com now", "Mail jane@example.com now", "entities"),
        ("Summarize https://a.example/1", "Summarize https://a.example/2", "entities"),
        ("How do I enable dark mode?", "How do I disable dark mode?", "terms"),
        ("What is the capital of France?", "¿Cuál es la capital de Francia?", "entities"),
        ("How are you doing today?", "Как дела сегодня?", "terms"),
        ("Tell me a joke about this", "Raconte-moi une blague sur ça", "language"),
        ("How are you?", "Как дела?", "script"),
    ],
)
def test_what_changes_the_answer_conflicts(first: str, second: str, reason: str) -> None:
    assert conflict(first, second) == reason
    assert conflict(second, first) == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What is the capital of France?", "what is the capital of france"),
        ("Convert 10 miles to kilometers.", "Convert ten miles into km"),
        ("What's 15% of 80?", "What is 15 percent of 80?"),
        ("Why doesn't my code work?", "Why does my code not work?"),
        ("Give me 5 tips for better sleep.", "Give me five tips for sleeping better."),
        ("How do I reverse a string in JavaScript?", "How can I reverse a string in javascript"),
        ("Tell me a joke.", "Tell me a joke please!"),
    ],
)
def test_rewordings_agree(first: str, second: str) -> None:
    assert conflict(first, second) is None


def test_capitalised_words_count_inside_a_sentence_only() -> None:
    assert features("Explain recursion. Then show Haskell and Elm.").entities == ("elm",)
    assert features("Explain the TCP handshake").entities == ("tcp",)
    assert features("Can I use it? I think so").entities == ()


def test_language_is_named_only_on_enough_evidence() -> None:
    assert features("Wie ist das Wetter heute?").language == "de"
    assert features("What is the weather like?").language == "en"
    assert features("Is 97 prime?").language == ""
    assert features("東京の天気は?").script == "japanese"
    assert features("1 + 2").script == ""


def test_longer_prompts_have_no_features() -> None:
    assert prompt_features("x" * LIMIT, LIMIT) is not None
    assert prompt_features("x" * (LIMIT + 1), LIMIT) is None


def test_features_survive_storage_and_malformed_ones_are_none() -> None:
    stored = features('Translate "I love you" to French, not German, by 5pm on Monday')
    assert PromptFeatures.from_json(stored.to_json()) == stored
    assert PromptFeatures.from_json(None) is None
    assert PromptFeatures.from_json({"numbers": "12"}) is None
    assert PromptFeatures.from_json({**stored.to_json(), "entities": [1]}) is None


@pytest.mark.parametrize(
    "unit",
    ['"a', "'a", "a'", "`", "\u201cx", "1,", "1.", "a@", "a.", "-", "-1", "twenty-", "one "],
)
def test_hostile_text_at_the_largest_bound_is_read(unit: str) -> None:
    # Every pattern is linear: at the largest allowed bound these finish at once, where a
    # backtracking pattern would not finish at all.
    limit = SemanticCacheConfig.model_fields["max_prompt_chars"].metadata[-1].le
    hostile = (unit * limit)[:limit]
    assert prompt_features(hostile, limit) is not None
    assert prompt_features("a" * 63 + "@" + hostile[: limit - 64], limit) is not None
