"""``python -m cloud_simulator [--host H] [--port P] [--db FILE]``: serve the
simulated cloud until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from werkzeug.serving import make_server

from . import jobs
from .app import CloudSimulator, log
from .routing import Settings
from .store import Store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cloud_simulator", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("CLOUD_SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CLOUD_SIMULATOR_PORT", "8400"))
    )
    parser.add_argument(
        "--db", default=os.environ.get("CLOUD_SIMULATOR_DB", "var/cloud-simulator.sqlite3")
    )
    parser.add_argument("--region", default=os.environ.get("CLOUD_SIMULATOR_REGION", "cn-north-4"))
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=float(os.environ.get("CLOUD_SIMULATOR_STEP_SECONDS", "0.3")),
        help="how long each asynchronous step takes (a job, a stack resource)",
    )
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our own JSON line per request
    if args.db != ":memory:":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.db)
    settings = Settings(region=args.region, step_seconds=args.step_seconds)
    app = CloudSimulator(store, settings)
    server = make_server(args.host, args.port, app, threaded=True)
    stopping = threading.Event()
    ticker = threading.Thread(
        target=jobs.settle_forever, args=(store, settings, stopping), daemon=True
    )
    ticker.start()

    def stop(signum, frame):  # the server's loop ends; in-flight requests finish
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("listening", host=args.host, port=server.server_port, db=args.db, region=args.region)
    server.serve_forever()
    log("stopped")


if __name__ == "__main__":
    main()
