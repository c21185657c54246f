"""Pseudonym maps of stored conversations, sealed at rest: a later turn of a thread, a
conversation or a ``previous_response_id`` chain continues the same placeholders and can
restore one the model repeats from an earlier turn (or from a summary of it).

The map is JSON sealed (``security.sealing``) under the server key's ``pseudonym-vault``
key, bound to its tenant and owner; it is never logged. A map that does not open (the
server key changed) is treated as absent, with a warning that names the owner only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from portway.security.sealing import Sealer, SealError
from portway.store.pseudonyms import PseudonymStore

logger = logging.getLogger(__name__)

# The purpose of the server key this vault's sealer is keyed with (``ServerKey.sealer``).
PURPOSE = "pseudonym-vault"


def _associated(tenant: str, owner: str) -> bytes:
    return f"portway.pseudonyms\0{tenant}\0{owner}".encode()


class PseudonymVault:
    def __init__(
        self,
        store: PseudonymStore,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock

    async def load(self, tenant: str, owner: str) -> dict[str, Any] | None:
        sealed = await self._store.get(tenant, owner)
        if sealed is None:
            return None
        try:
            return orjson.loads(self._sealer.open(sealed, _associated(tenant, owner)))
        except SealError:
            logger.warning("the pseudonym map of %s does not open (server key changed?)", owner)
            return None

    async def save(self, tenant: str, owner: str, saved: dict[str, Any]) -> None:
        sealed = self._sealer.seal(orjson.dumps(saved), _associated(tenant, owner))
        await self._store.put(tenant, owner, sealed, self._clock())

    async def drop(self, tenant: str, owner: str) -> None:
        await self._store.drop(tenant, owner)
