"""Vector stores, one home: routes, serving class, wire models, rendering.

- ``router``: ``/v1/vector_stores`` (HTTP only: parse → ``VectorStoreService`` → JSON)
- ``serving``: ``VectorStoreService``, stores, their files and file batches, search
- ``wire``: request models and the response shapes
- ``render``: records → OpenAI objects
Indexing and search internals stay in ``retrieval/``; rows and queries in
``store/vector_stores.py``.
"""
