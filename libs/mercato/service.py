"""What every Mercato nameko service has, whatever it owns.

::

    class CatalogService(MercatoService):
        name = "catalog"
        db = Database(metadata)

gives the service its metrics, health and log context (``observability``), its caller's
identity (``caller``), its clock (``clock``: ``mercato.clock``), a ``ping`` RPC that
other services and probes use to see that it answers on the bus, and the test clock's
two RPCs the gateway's ``/v1/admin/clock`` calls on every service (``clock_state``,
``move_clock``).
"""

from __future__ import annotations

from mercato.clock import ClockProvider, ControllableClock
from mercato.contracts.common import ClockMoveRequest, ClockResponse
from mercato.errors import EXPECTED, NotFound
from mercato.identity import OPERATOR, Caller
from mercato.metrics import Observability
from mercato.transport import rpc
from mercato.validation import dump, load


class MercatoService:
    name: str

    observability = Observability()
    caller = Caller()
    clock = ClockProvider()

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=EXPECTED)
    def clock_state(self) -> dict:
        """The test clock's time and offset, as stored now; NotFound when this process
        reads the system clock."""
        clock = self._test_clock()
        clock.read()
        return clock_answer(clock)

    @rpc(expected_exceptions=EXPECTED)
    def move_clock(self, payload: dict) -> dict:
        """``{offset_seconds}``: set the test clock's offset (operator only). Time never
        goes back: an offset at or below the stored one changes nothing, so the same move
        may be sent again. Answers the clock as it is after the move."""
        self.caller.require_role(OPERATOR)
        request = load(ClockMoveRequest, payload)
        clock = self._test_clock()
        clock.move_to(request["offset_seconds"])
        return clock_answer(clock)

    def _test_clock(self) -> ControllableClock:
        # self.clock is the injected clock inside a worker
        clock = self.clock
        if not isinstance(clock, ControllableClock):
            raise NotFound("no test clock here: this process reads the system clock")
        return clock


def clock_answer(clock: ControllableClock) -> dict:
    """The test clock as ``ClockResponse`` shows it."""
    return dump(ClockResponse, {"now": clock.now(), "offset_seconds": clock.offset_seconds})
