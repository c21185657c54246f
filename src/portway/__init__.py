"""Portway: a self-hosted gateway for language models that speaks the OpenAI HTTP API."""

__version__ = "0.1.0"
