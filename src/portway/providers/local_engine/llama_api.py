"""The slice of llama.cpp's C API the batch engine uses, across llama-cpp-python versions.

Why a module of its own: the low-level names move between releases (``llama_kv_cache_*``
became ``llama_kv_self_*`` and then ``llama_memory_*``; ``kv_unified`` and
``flash_attn_type`` are recent context fields; the penalties sampler gained and lost
arguments). Everything version-dependent is decided here, once; blocking calls, to be
made on the engine's thread.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from llama_cpp import llama_cpp as ll

# A token's text is rarely longer; a longer one is asked again with the size it needs.
_PIECE_BUFFER = 64


@dataclass(frozen=True, slots=True)
class ContextShape:
    """How the engine's context is laid out: one KV stream of ``window`` per sequence."""

    window: int
    sequences: int
    batch: int
    threads: int


def new_context(model: Any, shape: ContextShape) -> Any:
    """A context with ``shape.sequences`` independent KV streams (NULL raises)."""
    params = ll.llama_context_default_params()
    params.n_ctx = shape.window * shape.sequences
    params.n_batch = shape.batch
    params.n_ubatch = shape.batch
    params.n_seq_max = shape.sequences
    params.n_threads = shape.threads
    params.n_threads_batch = shape.threads
    params.embeddings = False
    params.no_perf = True
    fields = {name for name, _ in type(params)._fields_}
    if "kv_unified" in fields:
        # One stream per sequence: a sequence's cells start at 0 whatever else runs, so
        # its attention is computed as it would be alone (greedy output is reproducible).
        params.kv_unified = False
    # Flash attention picks a different kernel by batch shape (a lone query token
    # splits the cache across threads): off, as llama-cpp-python's `Llama` has it.
    if "flash_attn_type" in fields:
        params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
    elif "flash_attn" in fields:
        params.flash_attn = False
    context = ll.llama_init_from_model(model, params)
    if not context:
        raise RuntimeError("llama.cpp could not create a context for the batch engine")
    return context


def free_context(context: Any) -> None:
    ll.llama_free(context)


def forget_sequence(context: Any, seq_id: int) -> None:
    """Drop every cached token of one sequence (its KV stream is free again)."""
    trim_sequence(context, seq_id, 0)  # removing from position 0 never fails


def trim_sequence(context: Any, seq_id: int, keep: int) -> bool:
    """Drop a sequence's cached tokens from position ``keep`` on (False: the model's
    memory cannot cut a sequence part-way, as a recurrent one cannot)."""
    if hasattr(ll, "llama_memory_seq_rm"):
        return bool(ll.llama_memory_seq_rm(ll.llama_get_memory(context), seq_id, keep, -1))
    if hasattr(ll, "llama_kv_self_seq_rm"):
        return bool(ll.llama_kv_self_seq_rm(context, seq_id, keep, -1))
    return bool(ll.llama_kv_cache_seq_rm(context, seq_id, keep, -1))


def copy_sequence(context: Any, source: int, target: int) -> bool:
    """Make ``target``'s cache a copy of ``source``'s (False: llama.cpp refused).

    Through the sequence state, not ``llama_memory_seq_cp``: with one KV stream per
    sequence that copies the whole stream (the full window), this only the cells held.
    """
    size = int(ll.llama_state_seq_get_size(context, source))
    if size <= 0:
        return False
    buffer = (ctypes.c_uint8 * size)()
    written = int(ll.llama_state_seq_get_data(context, buffer, size, source))
    return written > 0 and int(ll.llama_state_seq_set_data(context, buffer, written, target)) > 0


def is_end_of_generation(vocab: Any, token: int) -> bool:
    return bool(ll.llama_vocab_is_eog(vocab, token))


class PieceReader:
    """A token's bytes as the detokenizer writes them (no special tokens)."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._buffer = ctypes.create_string_buffer(_PIECE_BUFFER)

    def __call__(self, token: int) -> bytes:
        size = ll.llama_token_to_piece(
            self._vocab, token, self._buffer, len(self._buffer), 0, False
        )
        if size < 0:  # the buffer is too small: -size is what it needs
            self._buffer = ctypes.create_string_buffer(-size)
            size = ll.llama_token_to_piece(
                self._vocab, token, self._buffer, len(self._buffer), 0, False
            )
        return self._buffer.raw[:size]


class Batch:
    """A reusable ``llama_batch``: tokens, positions, one sequence id each, logits flags."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._batch = ll.llama_batch_init(capacity, 0, 1)
        self.size = 0

    def clear(self) -> None:
        self.size = 0

    def add(self, token: int, position: int, seq_id: int, logits: bool) -> None:
        batch, i = self._batch, self.size
        batch.token[i] = token
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = logits
        self.size = i + 1

    def decode(self, context: Any) -> int:
        """llama_decode's status: 0 done, 1 no room in the cache, else a failure."""
        self._batch.n_tokens = self.size
        return int(ll.llama_decode(context, self._batch))

    def free(self) -> None:
        ll.llama_batch_free(self._batch)
