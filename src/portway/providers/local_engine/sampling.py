"""Per-sequence sampling: each sequence in a batch owns a llama.cpp sampler chain.

The chain mirrors ``Llama.generate``'s (what the local provider used before batching):
logit bias, penalties, the grammar, then greedy at temperature 0, else top-k 40, top-p,
min-p 0.05, temperature and a seeded draw. ``llama_sampler_sample`` accepts the token
it picks, so a sequence's grammar and penalty state advance with that sequence only.
A continued message (prefill) is fed through the grammar first, token by token, and
refused if the grammar would not have produced it.
"""

from __future__ import annotations

import ctypes
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_cpp import llama_cpp as ll

# Llama.generate's defaults for what OpenAI's API does not expose.
TOP_K = 40
MIN_P = 0.05
PENALTY_LAST_N = 64
# llama.cpp draws a random seed for this value.
RANDOM_SEED = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Sampling:
    """How one sequence picks its tokens."""

    temperature: float = 1.0
    top_p: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    grammar: str | None = None


class GrammarRejectedError(ValueError):
    """llama.cpp's parser refused a grammar, or the grammar refuses a prefilled text."""


def _penalties(n_vocab: int, frequency: float, presence: float) -> Any:
    # The C signature changed across llama.cpp versions; the bindings name its arguments.
    names = list(inspect.signature(ll.llama_sampler_init_penalties).parameters)
    if "special_eos_id" in names:  # the oldest form
        return ll.llama_sampler_init_penalties(
            n_vocab, -1, -1, PENALTY_LAST_N, 1.0, frequency, presence, False, False
        )
    if "n_vocab" in names:
        return ll.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, 1.0, frequency, presence)
    return ll.llama_sampler_init_penalties(PENALTY_LAST_N, 1.0, frequency, presence)


def _logit_bias(n_vocab: int, bias: Mapping[int, float]) -> Any:
    entries = (ll.llama_logit_bias * len(bias))()
    for entry, (token, value) in zip(entries, bias.items(), strict=True):
        entry.token = token
        entry.bias = value
    return ll.llama_sampler_init_logit_bias(n_vocab, len(bias), entries)


def _grammar(vocab: Any, grammar: str) -> Any:
    sampler = ll.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise GrammarRejectedError("llama.cpp's parser rejects the grammar")
    return sampler


def grammar_allows(sampler: Any, token: int) -> bool:
    """Whether the grammar in its current state admits ``token`` next (it is not advanced)."""
    data = ll.llama_token_data(id=token, logit=0.0, p=0.0)
    candidates = ll.llama_token_data_array(
        data=ctypes.pointer(data), size=1, selected=-1, sorted=False
    )
    ll.llama_sampler_apply(sampler, ctypes.byref(candidates))
    return not math.isinf(candidates.data[0].logit)


def advance_grammar(sampler: Any, tokens: Sequence[int]) -> None:
    """Feed text the sequence already has through the grammar (prefill); refuse a misfit.

    Each token is checked before it is accepted: llama.cpp aborts the process when a
    grammar is made to accept a token it does not admit.
    """
    for token in tokens:
        if not grammar_allows(sampler, token):
            raise GrammarRejectedError("the text to continue does not match the grammar")
        ll.llama_sampler_accept(sampler, token)


def prefix_rejection(vocab: Any, grammar: str, tokens: Sequence[int]) -> bool:
    """True when the grammar cannot continue after ``tokens`` (blocking: from a thread)."""
    sampler = _grammar(vocab, grammar)
    try:
        advance_grammar(sampler, tokens)
    except GrammarRejectedError:
        return True
    finally:
        ll.llama_sampler_free(sampler)
    return False


class SamplerChain:
    """One sequence's sampler chain; ``free`` it when the sequence ends."""

    def __init__(
        self, vocab: Any, n_vocab: int, sampling: Sampling, prefix: Sequence[int] = ()
    ) -> None:
        self._chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        try:
            if sampling.logit_bias:
                self._add(_logit_bias(n_vocab, sampling.logit_bias))
            if sampling.frequency_penalty or sampling.presence_penalty:
                self._add(
                    _penalties(n_vocab, sampling.frequency_penalty, sampling.presence_penalty)
                )
            if sampling.grammar:
                grammar = _grammar(vocab, sampling.grammar)
                self._add(grammar)
                advance_grammar(grammar, prefix)
            if sampling.temperature <= 0:
                self._add(ll.llama_sampler_init_greedy())
            else:
                self._add(ll.llama_sampler_init_top_k(TOP_K))
                self._add(ll.llama_sampler_init_top_p(sampling.top_p, 1))
                self._add(ll.llama_sampler_init_min_p(MIN_P, 1))
                self._add(ll.llama_sampler_init_temp(sampling.temperature))
                seed = RANDOM_SEED if sampling.seed is None else sampling.seed & 0xFFFFFFFF
                self._add(ll.llama_sampler_init_dist(seed))
        except BaseException:
            self.free()
            raise

    def _add(self, sampler: Any) -> None:
        ll.llama_sampler_chain_add(self._chain, sampler)  # the chain owns it from now on

    def sample(self, context: Any, index: int) -> int:
        """The next token from the logits of batch row ``index`` (and accept it)."""
        return int(ll.llama_sampler_sample(self._chain, context, index))

    def free(self) -> None:
        if self._chain is not None:
            ll.llama_sampler_free(self._chain)
            self._chain = None
