"""``mercato.topology.EVENT_HANDLERS`` is every service-pool event handler the services
declare, with nameko's queue names: what ``mercato-migrate`` declares ahead and what
the outbox relay expects a queue for."""

from __future__ import annotations

import importlib

from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from mercato.topology import EVENT_HANDLERS, PROCESSES, EventHandlerQueue


def declared_handlers() -> set[EventHandlerQueue]:
    found = set()
    for process in PROCESSES:
        module = importlib.import_module(f"{process.package}.service")
        service = getattr(module, process.service_class)
        for attr in dir(service):
            for entrypoint in getattr(getattr(service, attr), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, EventHandler) and (
                    entrypoint.handler_type is SERVICE_POOL
                ):
                    found.add(EventHandlerQueue(service.name, attr, entrypoint.event_type))
    return found


def test_the_list_is_every_handler_the_services_declare():
    assert set(EVENT_HANDLERS) == declared_handlers()
    assert len(set(EVENT_HANDLERS)) == len(EVENT_HANDLERS)


def test_queue_names_are_nameko_s():
    handler = EventHandlerQueue("orders", "on_payment_failed", "billing.payment.failed")
    assert handler.queue == "evt-billing-billing.payment.failed--orders.on_payment_failed"
    assert handler.exchange == "billing.events"
