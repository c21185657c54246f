"""Virtual keys, one home: routes, serving class, wire models, rendering, the key service.

- ``router``: ``/v1/admin/keys`` (HTTP only: parse → ``KeyServing`` → JSON)
- ``serving``: ``KeyServing``, the admin actions on keys for the API and the console
- ``wire``: request models and the key object's shape
- ``render``: records → key objects, wire requests → store fields
- ``service``: ``KeyService``, key lifecycle and cached resolution of secrets
Rows and queries stay in ``store/keys.py`` (the database layer is shared).
"""
