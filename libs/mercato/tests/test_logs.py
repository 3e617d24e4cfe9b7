"""Log lines are one JSON object each, carrying service, entrypoint and correlation id.

Log shippers split on newlines and index the keys; a multi-line traceback or a record
without its correlation id cannot be followed across services.
"""

import io
import json
import logging

import eventlet
import pytest

from mercato import logs


@pytest.fixture
def log_to_buffer():
    """A logger wired the way ``logs.logging_config`` wires stdout, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("mercato.tests.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, buffer
    logger.handlers[:] = []


def _records(buffer):
    lines = buffer.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def test_each_record_is_one_json_line_with_the_worker_context(log_to_buffer):
    logger, buffer = log_to_buffer
    token = logs.bind(service="orders", entrypoint="place_order", correlation_id="corr-1")
    try:
        logger.info("order %s placed", "ord_1")
        logger.warning("a message\nover two lines")
    finally:
        logs.unbind(token)

    records = _records(buffer)
    assert len(records) == 2
    assert records[0]["message"] == "order ord_1 placed"
    assert records[1]["message"] == "a message\nover two lines"
    for record in records:
        assert record["service"] == "orders"
        assert record["entrypoint"] == "place_order"
        assert record["correlation_id"] == "corr-1"
        assert record["logger"] == "mercato.tests.logs"
    assert [r["level"] for r in records] == ["INFO", "WARNING"]


def test_a_traceback_stays_inside_its_json_line(log_to_buffer):
    logger, buffer = log_to_buffer
    try:
        raise RuntimeError("database away")
    except RuntimeError:
        logger.exception("relay pass failed")

    (record,) = _records(buffer)
    assert record["message"] == "relay pass failed"
    assert "RuntimeError: database away" in record["exc_info"]


def test_time_is_utc_rfc3339_with_milliseconds(log_to_buffer):
    logger, buffer = log_to_buffer
    logger.info("tick")

    (record,) = _records(buffer)
    date, _, clock = record["time"].partition("T")
    assert len(date) == 10
    assert clock.endswith("Z")
    assert len(clock) == len("12:34:56.789Z")


def test_outside_a_worker_the_process_service_names_the_record(log_to_buffer, monkeypatch):
    monkeypatch.setattr(logs, "_process_service", "billing")
    logger, buffer = log_to_buffer
    logger.info("started")

    (record,) = _records(buffer)
    assert (record["service"], record["entrypoint"], record["correlation_id"]) == (
        "billing",
        "-",
        "-",
    )


def test_concurrent_workers_keep_their_own_correlation_ids(log_to_buffer):
    """Each worker is a green thread; one's context must not leak into another's lines."""
    logger, buffer = log_to_buffer

    def worker(correlation_id):
        token = logs.bind(service="orders", entrypoint="pay", correlation_id=correlation_id)
        try:
            for step in range(3):
                logger.info("%s step %d", correlation_id, step)
                eventlet.sleep(0)  # let the other worker run between our lines
        finally:
            logs.unbind(token)

    pool = eventlet.GreenPool()
    pool.spawn(worker, "corr-a")
    pool.spawn(worker, "corr-b")
    pool.waitall()

    records = _records(buffer)
    assert len(records) == 6
    assert [r["correlation_id"] for r in records] != sorted(r["correlation_id"] for r in records)
    for record in records:
        assert record["message"].startswith(record["correlation_id"])
