"""The semantic-hit guard: a near match is served only when nothing that changes the answer differs.

Contract: ``prompt_features(text, max_chars)`` reads from one user prompt what a sentence
embedding smooths over although the answer depends on it: numbers (normalised, so
"12", "12.0" and "twelve" are one value; a leading minus counts), quoted strings,
negations, names (capitalised words inside a sentence, acronyms, code identifiers,
URLs, e-mail addresses), terms from a lexicon (units and currencies, places, natural
and programming languages, weekdays and months, polar words such as more/less,
before/after, enable/disable), and the prompt's script and language.
``PromptFeatures.conflict(other)`` names the first feature on which two prompts differ,
or None when an answer to one may serve the other. Each feature is compared in order
("USD to EUR" is not "EUR to USD"); an undetermined language matches any. A text
longer than ``max_chars`` has no features (None): past the embedding model's window two
prompts may differ unseen, so such a prompt gets exact hits only.

It runs on client text (at store time, and on a similarity match): the text is bounded
first, and every pattern is linear (no repeated group whose body can match the same
characters in two ways), so no input can make a pattern backtrack.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from portway.cache.semantic.lexicon import (
    FUNCTION_WORDS,
    NEGATIONS,
    NUMBER_WORDS,
    ORDINAL_SUFFIXES,
    ORDINAL_WORDS,
    SCALE_WORDS,
    STOPWORDS,
    TERMS,
)

_QUOTED = re.compile(
    r'"([^"\n]{1,300})"'
    r"|“([^”\n]{1,300})”"
    r"|\u2018([^\u2019\n]{1,300})\u2019"
    r"|«([^»\n]{1,300})»"
    r"|`([^`\n]{1,300})`"
    r"|(?<!\w)'([^'\n]{1,300})'(?!\w)"
)
_CHUNK = re.compile(r"\S+")
_NUMBER = re.compile(r"(-?)(\d{1,30}(?:[.,:]\d{1,30}){0,8})([^\W\d_]{0,12}|%|°[cf]?)")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,30})?")
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_CODE_CHAR = re.compile(r"[_./\\=()\[\]{}<>:#@^~*+|&$]")
_CAMEL = re.compile(r"[a-z][A-Z]")
_LETTER_DIGIT = re.compile(r"[^\W\d_]\d|\d[^\W\d_]")
_OPENERS = "([{\"'“\u2018«¿¡*"
_CLOSERS = ")]}\"'”\u2019».,!?:;*"
_SENTENCE_ENDS = frozenset(".!?:;")
_CURRENCY = "$€£¥"
_CLOCK_SUFFIXES = frozenset({"am", "pm"})
_CONTRACTIONS = frozenset({"s", "re", "ve", "ll", "d", "m"})
_OPERATORS = frozenset(
    {"+", "/", "=", "==", "===", "!=", "!==", "<", ">", "<=", ">=", "^", "&&", "||", "->", "=>"}
)
# A language is named only on two function words of it: one word is often shared.
_LANGUAGE_EVIDENCE = 2
_ELISION_CHARS = 4  # l', d', qu', dell': a short head before an apostrophe is an article

# First code point of each script block, ascending; a letter belongs to the last start <= it.
_SCRIPT_STARTS = (
    (0x0041, "latin"),
    (0x0250, "other"),
    (0x0370, "greek"),
    (0x0400, "cyrillic"),
    (0x0530, "other"),
    (0x0590, "hebrew"),
    (0x0600, "arabic"),
    (0x0780, "other"),
    (0x0900, "devanagari"),
    (0x0980, "other"),
    (0x0E00, "thai"),
    (0x0E80, "other"),
    (0x1100, "hangul"),
    (0x1200, "other"),
    (0x1E00, "latin"),
    (0x1F00, "other"),
    (0x3040, "kana"),
    (0x3100, "other"),
    (0x3130, "hangul"),
    (0x3190, "other"),
    (0x3400, "han"),
    (0x4DC0, "other"),
    (0x4E00, "han"),
    (0xA000, "other"),
    (0xAC00, "hangul"),
    (0xD7B0, "other"),
)
_SCRIPT_KEYS = tuple(start for start, _ in _SCRIPT_STARTS)


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """What in a prompt changes its answer; kept with a cached answer, compared on a near match."""

    numbers: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    script: str = ""
    language: str = ""

    def conflict(self, other: PromptFeatures) -> str | None:
        """The first feature on which the prompts differ; None when they agree on all."""
        if self.numbers != other.numbers:
            return "numbers"
        if self.quotes != other.quotes:
            return "quotes"
        if self.negations != other.negations:
            return "negations"
        if self.entities != other.entities:
            return "entities"
        if self.terms != other.terms:
            return "terms"
        if self.script and other.script and self.script != other.script:
            return "script"
        if self.language and other.language and self.language != other.language:
            return "language"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "numbers": list(self.numbers),
            "quotes": list(self.quotes),
            "negations": list(self.negations),
            "entities": list(self.entities),
            "terms": list(self.terms),
            "script": self.script,
            "language": self.language,
        }

    @classmethod
    def from_json(cls, raw: object) -> PromptFeatures | None:
        """Features as stored; None when absent or malformed (then no semantic hit is served)."""
        if not isinstance(raw, dict):
            return None
        lists = {}
        for name in ("numbers", "quotes", "negations", "entities", "terms"):
            value = raw.get(name)
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                return None
            lists[name] = tuple(value)
        script, language = raw.get("script"), raw.get("language")
        if not isinstance(script, str) or not isinstance(language, str):
            return None
        return cls(**lists, script=script, language=language)


def prompt_features(text: str, max_chars: int) -> PromptFeatures | None:
    """The answer-changing features of ``text``; None when it is longer than ``max_chars``."""
    if len(text) > max_chars:
        return None
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    quotes: list[str] = []
    pieces: list[str] = []
    last = 0
    for match in _QUOTED.finditer(text):
        quoted = next(group for group in match.groups() if group is not None)
        quotes.append(" ".join(quoted.split()))
        pieces.append(text[last : match.start()])
        last = match.end()
    pieces.append(text[last:])
    reader = _Reader()
    for piece in pieces:
        reader.read(piece)
    script = _script(text)
    return PromptFeatures(
        numbers=tuple(reader.numbers),
        quotes=tuple(quotes),
        negations=tuple(reader.negations),
        entities=tuple(reader.entities),
        terms=tuple(reader.terms),
        script=script,
        language=reader.language() if script == "latin" else "",
    )


def _normal_number(sign: str, digits: str) -> str:
    """One spelling per value ("1,000" is "1000", "12.0" is "12"); times, versions as written."""
    if "," in digits and _THOUSANDS.fullmatch(digits):
        digits = digits.replace(",", "")
    if ":" in digits or "," in digits or digits.count(".") > 1:
        return sign + digits
    try:
        value = format(Decimal(digits).normalize(), "f")
    except InvalidOperation:
        return sign + digits
    return value if value == "0" else sign + value


def _script(text: str) -> str:
    """The script most letters are written in ("japanese" when any kana is present)."""
    counts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            index = bisect_right(_SCRIPT_KEYS, ord(char)) - 1
            counts[_SCRIPT_STARTS[index][1] if index >= 0 else "other"] += 1
    if not counts:
        return ""
    if counts["kana"]:
        return "japanese"
    return counts.most_common(1)[0][0]


@dataclass(slots=True)
class _NumberWords:
    """A run of spelled-out number words ("two hundred and fifty") being added up."""

    total: int = 0
    current: int = 0
    active: bool = False

    def add(self, value: int, out: list[str]) -> None:
        current = self.current
        # "twenty" + "five" and "hundred" + "twenty" add up; "one" + "two" are two numbers.
        joins = (
            not self.active
            or current == 0
            or (current % 100 == 0 and value < 100)
            or (current % 10 == 0 and current % 100 != 0 and value < 10)
        )
        if not joins:
            self.flush(out)
        self.current += value
        self.active = True

    def scale(self, value: int) -> None:
        if value == 100:
            self.current = max(self.current, 1) * value
        else:
            self.total += max(self.current, 1) * value
            self.current = 0
        self.active = True

    def flush(self, out: list[str]) -> None:
        if self.active:
            out.append(str(self.total + self.current))
        self.total = self.current = 0
        self.active = False


@dataclass(slots=True)
class _Reader:
    """Walks a prompt's whitespace-separated chunks once, collecting features in order."""

    numbers: list[str] = field(default_factory=list)
    negations: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    stopwords: Counter[str] = field(default_factory=Counter)
    spelled: _NumberWords = field(default_factory=_NumberWords)
    sentence_start: bool = True

    def read(self, text: str) -> None:
        position = 0
        for match in _CHUNK.finditer(text):
            if "\n" in text[position : match.start()]:
                self.sentence_start = True
            position = match.end()
            raw = match.group()
            head = raw.lstrip(_OPENERS)
            core = head.rstrip(_CLOSERS)
            self._chunk(core, self.sentence_start)
            tail = head[len(core) :]
            if tail:
                self.spelled.flush(self.numbers)  # "twenty, five" is two numbers
            if core:
                self.sentence_start = any(char in _SENTENCE_ENDS for char in tail)
        self.spelled.flush(self.numbers)

    def language(self) -> str:
        """The language whose function words occur most; "" on thin evidence or a tie."""
        ranked = self.stopwords.most_common(2)
        if not ranked or ranked[0][1] < _LANGUAGE_EVIDENCE:
            return ""
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            return ""
        return ranked[0][0]

    def _chunk(self, core: str, sentence_start: bool) -> None:
        if not core:
            return
        folded = core.casefold()
        if core in _OPERATORS:
            self._other()
            self.terms.append(core)
            return
        if "://" in core or folded.startswith("www."):
            self._other()
            self.entities.append(core)
            return
        if "@" in core and _EMAIL.fullmatch(core):
            self._other()
            self.entities.append(folded)
            return
        while core and core[0] in _CURRENCY:
            self._other()
            self.terms.append(TERMS[core[0]])
            core, folded = core[1:], folded[1:]
        if not core:
            return
        if self._number(folded):
            return
        if folded in TERMS:
            # "JavaScript", "macOS", "km/h": known terms before any identifier rule.
            if folded.isalpha():
                self._word(core, sentence_start)
            else:
                self._other()
                self.terms.append(TERMS[folded])
            return
        if core[0] == "-" or _CODE_CHAR.search(core) or _CAMEL.search(core):
            # Flags, paths, calls, dotted names, camelCase: identifiers, compared as written.
            self._other()
            self.entities.append(core)
            return
        if _LETTER_DIGIT.search(core):
            self._other()
            self.entities.append(core)
            return
        for index, part in enumerate(core.split("-")):
            if not self._number(part.casefold()):
                self._apostrophes(part, sentence_start and index == 0)

    def _number(self, folded: str) -> bool:
        match = _NUMBER.fullmatch(folded)
        if match is None:
            return False
        sign, digits, suffix = match.groups()
        unit = None
        if suffix and suffix not in ORDINAL_SUFFIXES:
            unit = suffix if suffix in _CLOCK_SUFFIXES else TERMS.get(suffix)
            if unit is None:
                return False  # "4o", "10x": an identifier, not a quantity
        self._other()
        self.numbers.append(_normal_number(sign, digits))
        if unit is not None:
            self.terms.append(unit)
        return True

    def _apostrophes(self, part: str, sentence_start: bool) -> None:
        head, mark, rest = part.replace("\u2019", "'").partition("'")
        if not mark:
            self._word(part, sentence_start)
            return
        ending = rest.casefold()
        if ending == "t" and head.casefold().endswith("n"):
            self._count_stopword(head.casefold())
            self._other()
            self.negations.append("not")
            return
        if ending in _CONTRACTIONS or not rest:
            self._word(head, sentence_start)
            return
        if len(head) <= _ELISION_CHARS:
            self._count_stopword(head.casefold())  # an elided article: l'Italia, qu'est
        else:
            self._word(head, sentence_start)
            sentence_start = False
        for index, piece in enumerate(rest.split("'")):
            self._word(piece, sentence_start and index == 0)

    def _word(self, word: str, sentence_start: bool) -> None:
        if not word or not any(char.isalnum() for char in word):
            return
        lower = word.casefold()
        self._count_stopword(lower)
        if lower in NUMBER_WORDS:
            self.spelled.add(NUMBER_WORDS[lower], self.numbers)
            return
        if lower in SCALE_WORDS:
            self.spelled.scale(SCALE_WORDS[lower])
            return
        if lower == "and" and self.spelled.active:
            return
        if lower in ORDINAL_WORDS:
            self.spelled.add(ORDINAL_WORDS[lower], self.numbers)
            self.spelled.flush(self.numbers)
            return
        self._other()
        if lower in NEGATIONS:
            self.negations.append(NEGATIONS[lower])
        elif lower in TERMS:
            self.terms.append(TERMS[lower])
        elif len(word) > 1 and word.isupper():
            self.entities.append(lower)  # an acronym, wherever it stands
        elif word[0].isupper() and not sentence_start and lower not in FUNCTION_WORDS:
            self.entities.append(lower)

    def _count_stopword(self, lower: str) -> None:
        for language, words in STOPWORDS.items():
            if lower in words:
                self.stopwords[language] += 1

    def _other(self) -> None:
        """Any token that is not a number word ends a spelled-out number."""
        self.spelled.flush(self.numbers)
