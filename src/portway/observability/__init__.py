"""Observability: Prometheus metrics fed by the ledger's per-request records."""
