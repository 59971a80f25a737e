"""Leased builds: one attempt at a time per build, whatever Pub/Sub delivers.

An attempt claims the build under a short lease that a heartbeat renews while it works. A duplicate delivery
waits for the running attempt to finish (then acknowledges) or for its lease to lapse (the attempt crashed:
it takes the build over), so a crash costs about one lease, not the request: failing fast instead would
spend the subscription's few deliveries against a lease and dead-letter a request that could have been built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from tenacity import Retrying, stop_after_attempt, wait_exponential

from shared.errors import BuildInProgress, LeaseLost
from shared.ports import BuildLedger

# A running attempt renews its lease every LEASE / 4; a crashed one loses it within LEASE.
LEASE = timedelta(seconds=60)
# How long a duplicate delivery waits for the running attempt before it gives up (and is retried): below the
# function's 540 s timeout, so the wait ends with an answer, not a killed instance.
WAIT_FOR_RUNNING_S = 420.0
# A renewal that errs is tried this often (within a quarter of the renewal period) before the lease counts as lost.
RENEW_ATTEMPTS = 3
POLL_S = 5.0







def claim_build(
    ledger: BuildLedger, build_id: str, attempt: str, clock: Callable[[], datetime],
    sleep: Callable[[float], None], wait_s: float = WAIT_FOR_RUNNING_S,
) -> dict[str, Any] | None:
    """Claim the build, waiting while another attempt holds it; its end record when it is already done.

    Raises BuildInProgress when the other attempt still runs after `wait_s` (Pub/Sub then retries).
    """
    for _ in range(int(wait_s / POLL_S)):
        try:
            return ledger.claim(build_id, attempt, clock(), LEASE)
        except BuildInProgress:
            sleep(POLL_S)
    return ledger.claim(build_id, attempt, clock(), LEASE)


class Lease:
    """The claim of a running attempt, renewed in the background until the attempt ends."""

    def __init__(
        self, ledger: BuildLedger, build_id: str, attempt: str, clock: Callable[[], datetime],
        renew_every_s: float = LEASE.total_seconds() / 4,
    ) -> None:
        self.ledger, self.build_id, self.attempt, self.clock = ledger, build_id, attempt, clock
        self.renew_every_s = renew_every_s
        self.lost = False
        self._stop = threading.Event()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            if not self._renewed():
                self.lost = True
                return

    def _renewed(self) -> bool:
        """One renewal, retried while the ledger errs (a 503 must not end the heartbeat); False once it refused
        or kept failing for RENEW_ATTEMPTS, so the attempt stops before another may have taken the build."""
        try:
            pause = wait_exponential(multiplier=self.renew_every_s / 16, max=self.renew_every_s / 4)
            for attempt in Retrying(stop=stop_after_attempt(RENEW_ATTEMPTS), wait=pause, reraise=True):
                with attempt:
                    return self.ledger.renew(self.build_id, self.attempt, self.clock() + LEASE)
        except Exception:
            return False
        return False

    def check(self) -> None:
        """Raise LeaseLost when another attempt has taken the build over."""
        if self.lost:
            raise LeaseLost(f"build {self.build_id}: attempt {self.attempt} lost its lease")

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        worker = threading.Thread(target=self._renew_until_stopped, name=f"lease-{self.build_id}", daemon=True)
        worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            worker.join()
