"""Continuous batching over one llama.cpp context: many generations, one decode per step.

Contract: ``submit`` hands a ``GenerationJob`` to the engine's own thread and returns a
``concurrent.futures.Future`` of its ``Generation``; the caller's event loop never
blocks. Up to ``ContextShape.sequences`` jobs run at once, each in a KV stream of its
own (``seq_id`` = its slot); more wait in arrival order and join at the next token
boundary. A step is: at most one prompt chunk of one new sequence (its first token is
sampled right after it), then one ``llama_decode`` holding the next token of every
running sequence, each sampled by its own chain (``sampling``). Per sequence: stop
sequences, ``max_tokens`` (exact), an end-of-generation token, or ``job.cancel``
(checked at every step) end it; its slot is reused. Text is emitted per sequence as it
is decoded (``job.emit``, on the engine thread). A llama.cpp failure fails the
sequences of that call (``EngineError``) and the engine goes on.

Prefix reuse (``reuse_prefixes``, as llama.cpp's server and vLLM do it): a finished
sequence leaves its tokens in its stream. A new prompt takes the free slot holding its
longest prefix, or, when another slot (running or free) holds a longer one, a copy of
that slot's cache; only the rest of the prompt is read. Only prompts of the same
``GenerationJob.cache_scope`` (a tenant's) share a prefix. Greedy answers are the same
either way: a token's cache entry does not depend on what was decoded beside it.
``Generation.cached_tokens`` says how many prompt tokens were not read again.
"""

from __future__ import annotations

import codecs
import heapq
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from portway.providers.local_engine import llama_api
from portway.providers.local_engine.llama_api import Batch, ContextShape, PieceReader
from portway.providers.local_engine.sampling import SamplerChain, Sampling
from portway.providers.local_engine.stops import StopScanner

logger = logging.getLogger(__name__)

# A copy moves every cell its source holds; below this gain, reading the tokens is as cheap.
MIN_COPIED_PREFIX = 8


class EngineError(RuntimeError):
    """llama.cpp failed a call, or the engine closed, before the generation ended."""


@dataclass(slots=True)
class Generation:
    """One generation's outcome."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose cache was reused, not read again


@dataclass(slots=True)
class GenerationJob:
    """What to generate: a tokenized prompt continued under ``sampling``."""

    prompt: list[int]
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    stops: tuple[str, ...] = ()
    emit: Callable[[str], None] | None = None
    # How many of the prompt's last tokens are a message being continued (prefill):
    # the grammar, if any, must already have produced them.
    continued: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    # Prompts share cached prefixes only within one scope (a tenant's, see WireRequest).
    cache_scope: str = ""


class _Sequence:
    """A job admitted to a slot: the engine thread's state for it."""

    __slots__ = (
        "decoder",
        "fed",
        "future",
        "job",
        "last",
        "placed",
        "produced",
        "result",
        "sampler",
        "scanner",
        "slot",
    )

    def __init__(self, job: GenerationJob, future: Future[Generation], slot: int) -> None:
        self.job = job
        self.future = future
        self.slot = slot
        self.sampler: SamplerChain | None = None
        self.fed = 0  # tokens in this sequence's cache
        self.placed = False  # its slot's cache was matched to the prompt
        self.produced = 0
        self.last = -1  # the token sampled last, fed at the next decode
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.scanner = StopScanner(job.stops)
        self.result = Generation(prompt_tokens=len(job.prompt), finish_reason="length")

    @property
    def prefilling(self) -> bool:
        return self.fed < len(self.job.prompt)


class BatchEngine:
    """Runs generations of one model in batches on a dedicated thread."""

    def __init__(
        self,
        model: Any,
        vocab: Any,
        n_vocab: int,
        shape: ContextShape,
        name: str,
        reuse_prefixes: bool = True,
    ):
        self._model = model
        self._vocab = vocab
        self._n_vocab = n_vocab
        self.shape = shape
        self._name = name
        self._context: Any = None
        self._batch: Batch | None = None
        self._piece = PieceReader(vocab)
        self._wake = threading.Condition()
        self._queue: deque[tuple[GenerationJob, Future[Generation]]] = deque()
        self._free = list(range(shape.sequences))  # a heap: the lowest slot first
        self._running: dict[int, _Sequence] = {}
        self._reuse_prefixes = reuse_prefixes
        # Engine thread only: the tokens each slot's KV stream holds (positions 0..n-1),
        # and when each slot was last let go (the least recent is given away first).
        self._held: list[list[int]] = [[] for _ in range(shape.sequences)]
        self._scopes = [""] * shape.sequences  # whose prompts each slot's cache holds
        self._released = [0] * shape.sequences
        self._releases = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        # Written by the engine thread only; read anywhere.
        self.tokens_generated = 0
        self.largest_batch = 0  # the most sequences one decode step has held
        self.tokens_reused = 0  # prompt tokens not read again (prefix reuse)
        self.prefixes_copied = 0  # prefixes taken from another slot's cache

    # Any thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Create the context and start the thread (blocking: the cache is allocated)."""
        self._context = llama_api.new_context(self._model, self.shape)
        self._batch = Batch(max(self.shape.batch, self.shape.sequences))
        self._thread = threading.Thread(
            target=self._serve, name=f"llama-batch-{self._name}", daemon=True
        )
        self._thread.start()

    def submit(self, job: GenerationJob) -> Future[Generation]:
        future: Future[Generation] = Future()
        with self._wake:
            if self._closing:
                raise EngineError(f"the local model {self._name} is shutting down")
            self._queue.append((job, future))
            self._wake.notify()
        return future

    @property
    def running(self) -> int:
        """Sequences admitted now (being prefilled or decoded)."""
        return len(self._running)

    def close(self) -> None:
        """Stop the thread (running generations fail) and free the context."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        if self._batch is not None:
            self._batch.free()
        if self._context is not None:
            llama_api.free_context(self._context)
        self._context = self._batch = self._thread = None

    # The engine thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not self._queue and not self._running:
                    self._wake.wait()
                if self._closing:
                    break
                admitted = self._admit()
            try:
                for sequence in admitted:
                    self._begin(sequence)
                self._step()
            except Exception as error:  # a bug here must not leave callers waiting forever
                logger.exception("local model %s: the batch engine failed a step", self._name)
                for sequence in list(self._running.values()):
                    self._fail(sequence, EngineError(f"the local model failed: {error}"))
        closed = EngineError(f"the local model {self._name} shut down")
        for sequence in list(self._running.values()):
            self._fail(sequence, closed)
        with self._wake:
            waiting, self._queue = list(self._queue), deque()
        for _job, future in waiting:
            future.set_exception(closed)

    def _admit(self) -> list[_Sequence]:
        """Queued jobs that get a free slot now (called with the lock held)."""
        admitted = []
        while self._queue and self._free:
            job, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            sequence = _Sequence(job, future, self._take_slot(job))
            self._running[sequence.slot] = sequence
            admitted.append(sequence)
        return admitted

    def _shared(self, slot: int, job: GenerationJob) -> int:
        """How much of the job's prompt the slot's cache holds (none of another scope's)."""
        if self._scopes[slot] != job.cache_scope:
            return 0
        return _common_prefix(self._held[slot], job.prompt)

    def _take_slot(self, job: GenerationJob) -> int:
        """The free slot holding the longest prefix of ``prompt``; else the one let go
        longest ago (called with the lock held)."""
        if not self._reuse_prefixes:
            return heapq.heappop(self._free)
        slot = max(
            self._free,
            key=lambda s: (self._shared(s, job), -self._released[s], -s),
        )
        self._free.remove(slot)
        heapq.heapify(self._free)
        return slot

    def _place(self, sequence: _Sequence) -> None:
        """Before a prompt is read: keep the longest cached prefix of it in the slot
        (copied from another slot if that holds more) and drop the rest."""
        sequence.placed = True
        slot, job = sequence.slot, sequence.job
        prompt, held = job.prompt, self._held[slot]
        reused = self._shared(slot, job) if self._reuse_prefixes else 0
        donor, offered = self._best_donor(slot, job) if self._reuse_prefixes else (-1, 0)
        self._scopes[slot] = job.cache_scope
        if offered >= reused + MIN_COPIED_PREFIX:
            if llama_api.copy_sequence(self._context, donor, slot):
                held = self._held[slot] = list(self._held[donor])
                reused = offered
                self.prefixes_copied += 1
            else:
                logger.warning("local model %s: a cache copy was refused", self._name)
                llama_api.forget_sequence(self._context, slot)
                held = self._held[slot] = []
                reused = 0
        # The prompt's last token is always read: its logits give the first new token.
        reused = min(reused, len(prompt) - 1)
        if reused < len(held) and not llama_api.trim_sequence(self._context, slot, reused):
            llama_api.forget_sequence(self._context, slot)
            reused = 0
        del held[reused:]
        sequence.fed = reused
        sequence.result.cached_tokens = reused
        self.tokens_reused += reused

    def _best_donor(self, slot: int, job: GenerationJob) -> tuple[int, int]:
        """The other slot holding the longest prefix of the job's prompt, and its length."""
        best, longest = -1, 0
        for other, held in enumerate(self._held):
            if other != slot and held and held[0] == job.prompt[0]:
                common = self._shared(other, job)
                if common > longest:
                    best, longest = other, common
        return best, longest

    def _begin(self, sequence: _Sequence) -> None:
        job = sequence.job
        try:
            continued = job.prompt[len(job.prompt) - job.continued :] if job.continued else []
            sequence.sampler = SamplerChain(self._vocab, self._n_vocab, job.sampling, continued)
        except (ValueError, RuntimeError) as error:
            self._fail(sequence, error)
            return
        if not job.prompt or job.max_tokens <= 0:
            self._finish(sequence)

    def _step(self) -> None:
        for sequence in list(self._running.values()):
            if sequence.job.cancel.is_set():
                sequence.result.finish_reason = "stop"
                self._finish(sequence)
        prefilling = next((s for s in self._running.values() if s.prefilling), None)
        if prefilling is not None:
            self._prefill(prefilling)
        decoding = sorted(
            (s for s in self._running.values() if not s.prefilling), key=lambda s: s.slot
        )
        if decoding:
            self._decode(decoding)

    def _prefill(self, sequence: _Sequence) -> None:
        """One chunk of a new sequence's prompt; after the last, its first token."""
        assert self._batch is not None and sequence.sampler is not None
        if not sequence.placed:
            self._place(sequence)
        batch, prompt = self._batch, sequence.job.prompt
        chunk = prompt[sequence.fed : sequence.fed + self.shape.batch]
        last = sequence.fed + len(chunk) == len(prompt)
        batch.clear()
        for offset, token in enumerate(chunk, start=1):
            batch.add(
                token, sequence.fed + offset - 1, sequence.slot, last and offset == len(chunk)
            )
        status = batch.decode(self._context)
        if status != 0:
            self._fail(sequence, EngineError(f"llama_decode failed ({status}) on a prompt"))
            return
        sequence.fed += len(chunk)
        self._held[sequence.slot].extend(chunk)
        if last:
            self._take(sequence, sequence.sampler.sample(self._context, batch.size - 1))

    def _decode(self, sequences: list[_Sequence]) -> None:
        """The next token of every decoding sequence, in one call (slots ascending: llama.cpp
        groups consecutive sequence ids into one compute)."""
        assert self._batch is not None
        batch = self._batch
        batch.clear()
        for sequence in sequences:
            batch.add(sequence.last, sequence.fed, sequence.slot, True)
        self.largest_batch = max(self.largest_batch, len(sequences))
        status = batch.decode(self._context)
        if status != 0:
            failure = EngineError(f"llama_decode failed ({status}) on a batch")
            for sequence in sequences:
                self._fail(sequence, failure)
            return
        for row, sequence in enumerate(sequences):
            sequence.fed += 1
            self._held[sequence.slot].append(sequence.last)
            assert sequence.sampler is not None
            self._take(sequence, sequence.sampler.sample(self._context, row))

    def _take(self, sequence: _Sequence, token: int) -> None:
        """A sampled token: end the sequence, or emit its text and feed it next step."""
        result = sequence.result
        if llama_api.is_end_of_generation(self._vocab, token):
            result.finish_reason = "stop"
            self._finish(sequence)
            return
        text = sequence.decoder.decode(self._piece(token))
        sequence.produced += 1
        self.tokens_generated += 1
        safe, stopped = sequence.scanner.feed(text)
        if safe:
            result.text += safe
            self._emit(sequence, safe)
        if stopped:
            result.finish_reason = "stop"
            self._finish(sequence)
        elif sequence.produced >= sequence.job.max_tokens:
            result.finish_reason = "length"
            self._finish(sequence)
        else:
            sequence.last = token

    def _emit(self, sequence: _Sequence, text: str) -> None:
        emit = sequence.job.emit
        if emit is None:
            return
        try:
            emit(text)
        except RuntimeError:  # the caller's event loop is gone: nobody reads this any more
            logger.debug("local model %s: a reader left without cancelling", self._name)
            sequence.job.cancel.set()

    def _release(self, sequence: _Sequence, keep: bool) -> None:
        """Free the slot; its cache stays for later prompts if ``keep`` and reuse is on."""
        if sequence.sampler is not None:
            sequence.sampler.free()
            sequence.sampler = None
        slot = sequence.slot
        if not (keep and self._reuse_prefixes):
            # A failed call may have left a part of a prompt in the stream: never reused.
            llama_api.forget_sequence(self._context, slot)
            self._held[slot] = []
        self._releases += 1
        self._released[slot] = self._releases
        del self._running[slot]
        with self._wake:
            heapq.heappush(self._free, slot)

    def _finish(self, sequence: _Sequence) -> None:
        result = sequence.result
        tail = sequence.scanner.pending + sequence.decoder.decode(b"", final=True)
        if tail and not sequence.job.cancel.is_set():
            result.text += tail
            self._emit(sequence, tail)
        result.completion_tokens = sequence.produced
        self._release(sequence, keep=True)
        sequence.future.set_result(result)

    def _fail(self, sequence: _Sequence, error: BaseException) -> None:
        logger.warning("local model %s: a generation failed: %s", self._name, error)
        # Not placed yet: the slot still holds exactly what it held.
        self._release(sequence, keep=not sequence.placed)
        sequence.future.set_exception(error)


def _common_prefix(held: list[int], prompt: list[int]) -> int:
    """How many leading tokens the two lists share."""
    length = min(len(held), len(prompt))
    if held[:length] == prompt[:length]:
        return length
    low, high = 0, length  # the shared prefix is [0, low); it ends before `high`
    while low < high:
        middle = (low + high + 1) // 2
        if held[:middle] == prompt[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
