"""Sealed compaction items: a summary a client carries, only Portway can read or forge.

Contract: ``seal`` encrypts and authenticates a summary (and the newer chat messages it
is followed by) for a tenant with the server's sealer (``security.sealing``, AES-256-GCM
under the server key's ``compaction`` key) and encodes it as URL-safe base64; ``open``
returns them, or raises a 400 ``invalid_encrypted_content`` for content that was altered,
sealed under another key or for another tenant (the tenant is the associated data), or
is not a sealed item at all.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from portway.errors import InvalidRequestError
from portway.security.sealing import Sealer, SealError

# The purpose of the server key this sealer is keyed with (``ServerKey.sealer``).
PURPOSE = "compaction"
# What a sealed item holds, versioned so its shape may change.
FORMAT = "portway.compaction.v1"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A summary and the chat messages that came after what it summarizes."""

    summary: str
    messages: tuple[dict[str, Any], ...] = ()


def _associated(tenant: str) -> bytes:
    return f"{FORMAT}\0{tenant}".encode()


class CompactionSealer:
    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def seal(self, sealed: Sealed, tenant: str) -> str:
        payload = {"summary": sealed.summary, "messages": list(sealed.messages)}
        blob = self._sealer.seal(orjson.dumps(payload), _associated(tenant))
        return base64.urlsafe_b64encode(blob).decode("ascii")

    def open(self, content: str, tenant: str, param: str = "input") -> Sealed:
        """What a sealed item holds (sealed for ``tenant``), or a 400."""
        try:
            if not isinstance(content, str):
                raise ValueError("not a string")
            blob = base64.urlsafe_b64decode(content.encode("ascii"))
            payload = orjson.loads(self._sealer.open(blob, _associated(tenant)))
        except (SealError, binascii.Error, ValueError):  # orjson's and ascii's are ValueErrors
            payload = None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("summary"), str)
            or not isinstance(payload.get("messages"), list)
        ):
            raise InvalidRequestError(
                "The compaction item's encrypted_content could not be verified: it was "
                "altered, or was not produced by this server for this organization.",
                param=param,
                code="invalid_encrypted_content",
            )
        return Sealed(str(payload["summary"]), tuple(payload["messages"]))
