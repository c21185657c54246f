"""Concurrent generation on a local GGUF model: continuous batching over llama.cpp.

``engine.BatchEngine`` runs every chat and text generation of one local model on its own
thread, many sequences per ``llama_decode``; ``sampling`` gives each sequence its own
sampler chain (grammar included); ``llama_api`` holds what differs between
llama-cpp-python versions.
"""

from portway.providers.local_engine.engine import (
    BatchEngine,
    EngineError,
    Generation,
    GenerationJob,
)
from portway.providers.local_engine.llama_api import ContextShape
from portway.providers.local_engine.sampling import GrammarRejectedError, Sampling

__all__ = [
    "BatchEngine",
    "ContextShape",
    "EngineError",
    "Generation",
    "GenerationJob",
    "GrammarRejectedError",
    "Sampling",
]
