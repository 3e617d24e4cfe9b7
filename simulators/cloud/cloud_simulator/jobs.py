"""Asynchronous jobs (ECS servers, EVS volumes): RUNNING until their due time, then
SUCCESS or FAIL (``job_error`` faults), and what that does to their resources.

Jobs run in real time (``step_seconds`` each step), not by the simulator's clock, so a
test never has to push them. ``settle`` is called by a background ticker and before
every read of a job, so an answer never shows a job that should have finished.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

from .store import Store

FAIL_REASON = "Injected job error: the operation failed in the simulated cloud."


def start_job(
    store: Store,
    domain_id: str,
    job_type: str,
    resource_type: str,
    resource_ids: list[str],
    seconds: float,
    fail: bool = False,
) -> str:
    job_id = uuid.uuid4().hex
    now = time.time()
    store.run(
        "INSERT INTO jobs (id, domain_id, job_type, status, resource_type, resource_ids,"
        " outcome, due_at, begin_at) VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?)",
        job_id,
        domain_id,
        job_type,
        resource_type,
        json.dumps(resource_ids),
        "FAIL" if fail else "SUCCESS",
        now + seconds,
        now,
    )
    return job_id


def settle(store: Store) -> None:
    """Finish every job whose time has come, and move its resources on."""
    with store.lock:
        due = store.all(
            "SELECT * FROM jobs WHERE status = 'RUNNING' AND due_at <= ? ORDER BY due_at",
            time.time(),
        )
        for job in due:
            ids = json.loads(job["resource_ids"])
            failed = job["outcome"] == "FAIL"
            with store.transaction():
                FINISHERS[job["job_type"]](store, job["domain_id"], ids, failed)
                store.run(
                    "UPDATE jobs SET status = ?, end_at = ?, fail_reason = ? WHERE id = ?",
                    job["outcome"],
                    time.time(),
                    FAIL_REASON if failed else None,
                    job["id"],
                )


def settle_forever(store: Store, settings, stopping: threading.Event) -> None:
    while not stopping.wait(max(settings.step_seconds / 4, 0.01)):
        try:
            settle(store)
        except Exception as exc:  # a bad row must not stop the ticker
            print(json.dumps({"event": "jobs.settle_failed", "error": repr(exc)}), flush=True)


def job_row(store: Store, domain_id: str, job_id: str):
    settle(store)
    return store.one("SELECT * FROM jobs WHERE id = ? AND domain_id = ?", job_id, domain_id)


def wait_for(store: Store, domain_id: str, job_id: str, keep_waiting: Callable[[], bool]):
    """Block until the job ends (the stack service waiting on ECS/EVS); None when
    ``keep_waiting`` says to stop first."""
    while True:
        row = job_row(store, domain_id, job_id)
        if row is None or row["status"] != "RUNNING":
            return row
        if not keep_waiting():
            return None
        time.sleep(0.02)


# -- what a finished job does ----------------------------------------------------------


def _finish_create_servers(store: Store, domain_id: str, ids: list[str], failed: bool) -> None:
    for server_id in ids:
        server = store.resource(domain_id, "server", server_id)
        if server is None or server["status"] != "BUILD":
            continue  # deleted (or deleting) while it was being built
        if failed:
            server["data"]["fault"] = {"code": 500, "message": FAIL_REASON}
            store.update_resource(server_id, status="ERROR", data=server["data"])
            continue
        store.update_resource(server_id, status="ACTIVE")
        for volume_id in server["data"].get("volume_ids", []):
            volume = store.resource(domain_id, "volume", volume_id)
            if volume is not None:
                volume["data"]["server_id"] = server_id
                store.update_resource(volume_id, status="in-use", data=volume["data"])
        if server["data"].get("eip_id"):
            eip = store.resource(domain_id, "eip", server["data"]["eip_id"])
            if eip is not None:
                eip["data"]["port_id"] = server["data"]["port_id"]
                eip["data"]["private_ip_address"] = server["data"]["private_ip"]
                store.update_resource(eip["id"], status="ACTIVE", data=eip["data"])


def _finish_delete_servers(store: Store, domain_id: str, ids: list[str], failed: bool) -> None:
    for server_id in ids:
        server = store.resource(domain_id, "server", server_id)
        if server is None:
            continue
        if failed:
            store.update_resource(server_id, status=server["data"].get("status_before", "ERROR"))
            continue
        data = server["data"]
        for volume_id in data.get("volume_ids", []):
            volume = store.resource(domain_id, "volume", volume_id)
            if volume is None:
                continue
            if data.get("delete_volume"):
                store.delete_resource(volume_id)
            else:
                volume["data"].pop("server_id", None)
                store.update_resource(volume_id, status="available", data=volume["data"])
        if data.get("eip_id"):
            eip = store.resource(domain_id, "eip", data["eip_id"])
            if eip is not None and data.get("delete_publicip"):
                store.delete_resource(eip["id"])
            elif eip is not None:
                eip["data"].pop("port_id", None)
                eip["data"].pop("private_ip_address", None)
                store.update_resource(eip["id"], status="DOWN", data=eip["data"])
        store.delete_resource(server_id)


def _finisher_of_power(target: str):
    """What a finished stop (``SHUTOFF``) or start (``ACTIVE``) job does to its servers:
    a failed job leaves each as it was; a server deleted meanwhile is left alone."""

    def finish(store: Store, domain_id: str, ids: list[str], failed: bool) -> None:
        for server_id in ids:
            server = store.resource(domain_id, "server", server_id)
            if server is None or server["status"] not in ("ACTIVE", "SHUTOFF"):
                continue
            server["data"].pop("task_state", None)
            status = None if failed else target
            store.update_resource(server_id, status=status, data=server["data"])

    return finish


def _finish_create_volumes(store: Store, domain_id: str, ids: list[str], failed: bool) -> None:
    for volume_id in ids:
        volume = store.resource(domain_id, "volume", volume_id)
        if volume is not None and volume["status"] == "creating":
            store.update_resource(volume_id, status="error" if failed else "available")


def _finish_delete_volumes(store: Store, domain_id: str, ids: list[str], failed: bool) -> None:
    for volume_id in ids:
        if failed:
            store.update_resource(volume_id, status="error_deleting")
        else:
            store.delete_resource(volume_id)


FINISHERS = {
    "createServer": _finish_create_servers,
    "deleteServer": _finish_delete_servers,
    "batchStopServer": _finisher_of_power("SHUTOFF"),
    "batchStartServer": _finisher_of_power("ACTIVE"),
    "createVolume": _finish_create_volumes,
    "deleteVolume": _finish_delete_volumes,
}
