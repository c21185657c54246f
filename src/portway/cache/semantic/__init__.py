"""The semantic cache: embeddings of the last user message and a vector index per context."""
