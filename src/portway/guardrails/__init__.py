"""Guardrails: plugins that check what goes to a model and what comes back (see ``stage``)."""
