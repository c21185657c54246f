"""Budget reservations in process memory, against slices of each budget leased from the DB.

A call reserves its worst-case cost on its budgets here, synchronously, in microseconds;
the database is asked only when this process's slice of a budget (its *lease*) is too
small, and then for a slice that covers many calls. The same scheme serves one process
on SQLite, several sharing SQLite or PostgreSQL, with or without Redis.

Why no call can push spend past a limit (for one budget in its current period):
- Database (``store.budgets``): ``spent + sum(L_h) <= limit``, where ``L_h`` is holder
  ``h``'s lease. A lease grows only in a transaction that locks the budget row and checks
  this; every other change keeps ``spent + sum(L_h)`` equal or lowers it.
- Process ``h`` keeps ``G_h`` (its lease as it knows it), ``R_h`` (the worst cases of its
  calls in flight) and ``S_h`` (real costs of finished calls not yet committed), with
  ``R_h + S_h <= G_h``: a hold is taken only if it fits, checked and added without an
  ``await`` in between (one event loop, so atomic); settling swaps a call's worst case
  for its real cost (not more, see the caveat); a commit lowers ``S_h`` and ``G_h`` by
  the same amount, after the database moved it from ``L_h`` to ``spent``.
- ``G_h <= L_h`` up to amounts already counted in ``spent``: ``G_h`` grows only after the
  database granted, and shrinks before the database is told (giving back) or right after
  the commit that moved the amount into ``spent`` (settling).
So everything the calls of all processes can cost, ``spent + sum(S_h + R_h)``, is at most
``spent + sum(L_h) <= limit``. A call starts only once its hold exists, so concurrent
calls never overspend, not even by one.

Crashes: a killed process's ``L_h`` stays until one of two things happens. If another
process recovers its whole ledger journal (same ``ledger.journal_dir``: a restart or a
sibling), the settlements in it are committed and then the lease is released: exact.
Otherwise the lease expires (``budgets.lease_ttl_seconds`` without renewal) and is
*forfeited*: its whole amount is charged as spent, which covers whatever the dead process
may have spent from it; settlements of a forfeited lease found later are skipped. A
crash can thus cost at most the dead process's unused slice, never an overspend, and no
budget stays locked longer than the TTL.

Giving back: every ``budgets.sync_interval_seconds`` each process renews its leases and
gives back spare slice beyond about two intervals of its recent demand (everything, when
idle or when another process's claim on the budget was refused). A process may refuse a
call while another holds spare slice of the same budget; the spare comes back within one
sync. Slices grow with demand (at most half of what is left of a budget per claim).

Caveat: a call whose real cost exceeds its worst case (a provider ignoring ``max_tokens``,
a prompt estimate below the provider's own count) can overspend by the difference;
after that the budget refuses further calls. A lowered limit binds the spare slices of
the process whose admin API changed it at once (it gives them back), of other processes
from their next sync (a budget over its limit gets all spare back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from portway.config import BudgetsConfig
from portway.store.budgets import BudgetRepository, LeaseSync, Settlement

logger = logging.getLogger(__name__)

# A fresh slice covers at least this many calls like the one that asked for it ...
MIN_SLICE_CALLS = 8
# ... and about this many seconds of this process's recent demand on the budget (a
# claim can queue behind a ledger commit; the slice must last until it is granted).
SLICE_SECONDS = 2.0
# Spare slice kept at a sync, in multiples of the demand seen since the previous one.
KEEP_INTERVALS = 2


def new_holder_id() -> str:
    """A process's name in lease rows and journal segment names (no ``-`` in it)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Want:
    """Reserve ``amount`` nano-dollars on a budget whose current period began at
    ``period_start``."""

    budget_id: int
    period_start: int
    amount: int


class LocalLease:
    """This process's view of its lease on one budget (see the module docstring)."""

    __slots__ = (
        "budget_id",
        "demand",
        "granted",
        "granted_at",
        "in_flight",
        "lease_id",
        "low_water",
        "recent",
        "retired",
        "since_grant",
        "unflushed",
    )

    def __init__(self, budget_id: int) -> None:
        self.budget_id = budget_id
        self.lease_id: int | None = None
        self.granted = 0  # G
        self.in_flight = 0  # R
        self.unflushed = 0  # S
        self.demand = 0  # worst cases held since the last sync
        self.recent = 0  # ... and during the interval before it
        self.since_grant = 0  # worst cases held since the last grant
        self.granted_at = 0.0
        # Below this much free slice, a claim for more starts in the background.
        self.low_water = 0
        # Lost (forfeited), or being given back whole: takes no new holds, only drains.
        self.retired = False

    @property
    def free(self) -> int:
        return self.granted - self.in_flight - self.unflushed

    def take(self, amount: int) -> bool:
        if self.retired or self.free < amount:
            return False
        self.in_flight += amount
        self.demand += amount
        self.since_grant += amount
        return True

    @property
    def idle(self) -> bool:
        return self.in_flight == 0 and self.unflushed == 0


@dataclass(frozen=True, slots=True)
class Hold:
    """A call's reservation on one budget; settle it exactly once."""

    lease: LocalLease
    period_start: int
    amount: int


class BudgetLeases:
    """Reserve / settle on budgets; a background task keeps the leases in sync."""

    def __init__(
        self,
        repository: BudgetRepository,
        config: BudgetsConfig,
        *,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.holder = holder or new_holder_id()
        self._config = config
        self._clock = clock
        self._leases: dict[int, LocalLease] = {}  # budget id -> current lease
        self._by_id: dict[int, LocalLease] = {}  # lease id -> lease (retired ones too)
        self._claim_locks: dict[int, asyncio.Lock] = {}
        self._last_sync = clock()
        self._dropping: list[LeaseSync] = []  # drops whose commit is not confirmed
        self._refills: set[asyncio.Future[LocalLease | bool | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._sync_lock = asyncio.Lock()

    # The hot path ------------------------------------------------------------------------

    def _lease(self, budget_id: int) -> LocalLease:
        lease = self._leases.get(budget_id)
        if lease is None or lease.retired:
            lease = self._leases[budget_id] = LocalLease(budget_id)
        return lease

    def try_reserve(self, wants: Sequence[Want]) -> list[Hold] | None:
        """All holds from what this process already leases, or None (nothing taken)."""
        leases = [self._lease(want.budget_id) for want in wants]
        for lease, want in zip(leases, wants, strict=True):
            if lease.free < want.amount:
                return None
        holds = []
        for lease, want in zip(leases, wants, strict=True):
            lease.take(want.amount)
            holds.append(Hold(lease, want.period_start, want.amount))
            if lease.free < lease.low_water:
                self._refill(lease, want)
        return holds

    def _refill(self, lease: LocalLease, want: Want) -> None:
        """Claim more before the slice runs out, so calls need not wait for the database
        (a claim may queue behind a ledger commit for a while)."""
        lock = self._claim_locks.setdefault(want.budget_id, asyncio.Lock())
        if lock.locked():
            return  # a claim is under way
        lease.low_water = 0  # one refill per slice
        task = asyncio.ensure_future(self._claim(want, refill=True))
        self._refills.add(task)
        task.add_done_callback(self._refilled)

    def _refilled(self, task: asyncio.Future[LocalLease | bool | None]) -> None:
        self._refills.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("claiming more budget ahead of need failed: %r", task.exception())

    async def reserve(self, wants: Sequence[Want]) -> list[Hold] | int:
        """Holds on every budget, or the id of the budget that refused (none are kept)."""
        holds = self.try_reserve(wants)
        if holds is not None:
            return holds
        holds = []
        try:
            for want in sorted(wants, key=lambda w: w.budget_id):
                lease = self._lease(want.budget_id)
                if not lease.take(want.amount):
                    claimed = await self._claim(want)
                    if claimed is False:
                        self.release(holds)
                        return want.budget_id
                    if claimed is None:
                        continue  # the budget was deleted: nothing to enforce
                    lease = claimed
                holds.append(Hold(lease, want.period_start, want.amount))
        except BaseException:
            self.release(holds)
            raise
        return holds

    def release(self, holds: Sequence[Hold]) -> None:
        """Give back holds of a call that never ran."""
        for hold in holds:
            hold.lease.in_flight -= hold.amount

    def settle(self, holds: Sequence[Hold], actual: int) -> tuple[Settlement, ...]:
        """The call cost ``actual`` on each of its budgets; the ledger commits the result."""
        settlements = []
        for hold in holds:
            lease = hold.lease
            lease.in_flight -= hold.amount
            if actual <= 0:
                continue  # nothing to move into ``spent``
            if lease.lease_id is not None:
                lease.unflushed += actual
            settlements.append(
                Settlement(lease.budget_id, hold.period_start, hold.amount, actual, lease.lease_id)
            )
        return tuple(settlements)

    def committed(self, settlements: Sequence[Settlement]) -> None:
        """The ledger committed these settlements (moved their cost into ``spent``)."""
        for item in settlements:
            lease = self._by_id.get(item.lease_id) if item.lease_id is not None else None
            if lease is None:
                continue
            lease.unflushed -= item.actual_nanos
            lease.granted -= item.actual_nanos
            if lease.retired and lease.idle:
                self._forget(lease)

    # Claims ------------------------------------------------------------------------------

    def _slice(self, lease: LocalLease, amount: int) -> int:
        """Spare to ask for beyond a claim's need: about ``SLICE_SECONDS`` of demand."""
        elapsed = max(self._clock() - lease.granted_at, self._config.sync_interval_seconds / 10)
        rate = max(lease.recent / self._config.sync_interval_seconds, lease.since_grant / elapsed)
        return max(amount * MIN_SLICE_CALLS, round(rate * SLICE_SECONDS))

    async def _claim(self, want: Want, *, refill: bool = False) -> LocalLease | bool | None:
        """Grow the lease until the hold fits: the lease holding it, False if refused,
        None if the budget no longer exists. A ``refill`` only grows the lease (by what
        the budget can spare) and holds nothing."""
        lock = self._claim_locks.setdefault(want.budget_id, asyncio.Lock())
        async with lock:
            for _ in range(3):
                lease = self._lease(want.budget_id)
                if not refill and lease.take(want.amount):
                    return lease
                # Hold what is free now; the claim asks for the rest.
                taken = 0 if refill else max(0, min(lease.free, want.amount))
                lease.in_flight += taken
                need = 0 if refill else want.amount - taken
                try:
                    claim = await self.repository.claim(
                        want.budget_id,
                        self.holder,
                        lease.lease_id,
                        need=need,
                        want=need + self._slice(lease, want.amount),
                        period_start=want.period_start,
                        ttl=self._config.lease_ttl_seconds,
                        now=self._clock(),
                    )
                finally:
                    lease.in_flight -= taken
                if claim.status == "missing":
                    return None
                if claim.status != "granted":
                    return False
                if lease.lease_id is not None and claim.lease_id != lease.lease_id:
                    # Our lease was forfeited while we did not look: start a new one.
                    self._retire(lease)
                    lease = self._lease(want.budget_id)
                lease.lease_id = claim.lease_id
                self._by_id[claim.lease_id] = lease  # type: ignore[index]
                lease.granted += claim.granted
                lease.since_grant = 0
                lease.granted_at = self._clock()
                lease.low_water = claim.granted // 2
                if refill or lease.take(want.amount):
                    return lease
        return False

    def _retire(self, lease: LocalLease) -> None:
        lease.retired = True
        if self._leases.get(lease.budget_id) is lease:
            del self._leases[lease.budget_id]
        if lease.idle:
            self._forget(lease)

    def _forget(self, lease: LocalLease) -> None:
        if lease.lease_id is not None and self._by_id.get(lease.lease_id) is lease:
            del self._by_id[lease.lease_id]

    # Sync --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="budget-leases")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._config.sync_interval_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.sync()
            except Exception:
                logger.exception("budget lease sync failed; retrying in the next interval")

    async def sync(self) -> None:
        """Renew leases, give back spare slice, charge leases of dead processes."""
        async with self._sync_lock:
            await self._sync(closing=False)
            await self.repository.forfeit_expired(self._clock())

    async def give_back(self) -> None:
        """Give back every spare slice now (admin reads call it to show exact figures)."""
        async with self._sync_lock:
            await self._sync(closing=True)

    async def _sync(self, *, closing: bool) -> None:
        now = self._clock()
        contended_since = self._last_sync - self._config.sync_interval_seconds
        self._last_sync = now
        live = [lease for lease in self._leases.values() if lease.lease_id is not None]
        contended = await self.repository.contended(
            [lease.budget_id for lease in live], contended_since
        )
        syncs = list(self._dropping)
        for lease in live:
            assert lease.lease_id is not None
            recent, lease.recent, lease.demand = lease.demand, lease.demand, 0
            claiming = self._claim_locks.get(lease.budget_id)
            if lease.idle and (recent == 0 or closing) and not (claiming and claiming.locked()):
                # Unused: hand the whole lease back (shrink here first, then the database).
                self._retire(lease)
                lease.granted = 0
                syncs.append(LeaseSync(lease.budget_id, lease.lease_id, drop=True))
                continue
            keep = 0 if closing or lease.budget_id in contended else KEEP_INTERVALS * recent
            spare = lease.free - keep
            if spare > 0:
                lease.granted -= spare
            syncs.append(LeaseSync(lease.budget_id, lease.lease_id, give_back=max(spare, 0)))
        self._dropping = [item for item in syncs if item.drop]
        lost = await self.repository.sync(
            self.holder, syncs, ttl=self._config.lease_ttl_seconds, now=self._clock()
        )
        # Drops are idempotent and are sent again until one commits; a give-back is not
        # (a commit whose answer got lost would give back twice), so it is not retried.
        self._dropping = []
        for item in syncs:
            lease = self._by_id.get(item.lease_id)
            if item.lease_id in lost and lease is not None and not item.drop:
                logger.warning(
                    "this process's lease on budget %d was forfeited (not renewed in time)",
                    item.budget_id,
                )
                self._retire(lease)

    async def close(self) -> None:
        """Stop syncing and hand every lease back.

        Call after the ledger committed its queue. If some settlement is still not
        committed (the database was down), only spare slice is given back: the rest
        stays for the journal's recovery, or expires.
        """
        self._stopping.set()  # a sync under way finishes (cancelling it mid-query would
        if self._task is not None:  # break its database connection)
            await self._task
            self._task = None
        await asyncio.gather(*self._refills, return_exceptions=True)
        try:
            if all(lease.idle for lease in (*self._leases.values(), *self._by_id.values())):
                # Also refunds what expired leases of ours were charged beyond their use.
                await self.repository.release_holders([self.holder])
                self._leases.clear()
                self._by_id.clear()
            else:
                await self.give_back()
        except Exception:
            logger.exception("giving back budget leases at shutdown failed; they will expire")

    def stats(self) -> dict[int, dict[str, int]]:
        """This process's leases per budget id (for diagnostics and tests)."""
        return {
            budget_id: {
                "lease_id": lease.lease_id or 0,
                "granted": lease.granted,
                "in_flight": lease.in_flight,
                "unflushed": lease.unflushed,
            }
            for budget_id, lease in self._leases.items()
        }
