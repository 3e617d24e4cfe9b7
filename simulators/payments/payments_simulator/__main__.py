"""``python -m payments_simulator [--host H] [--port P] [--db FILE]``: serve the simulated
card payment provider until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from werkzeug.serving import make_server

from .app import PaymentsSimulator, log
from .provider import Behaviour
from .store import Store


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="payments_simulator", description=__doc__)
    parser.add_argument("--host", default=env("PAYMENTS_SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PAYMENTS_SIMULATOR_PORT", "8500")))
    parser.add_argument(
        "--db", default=env("PAYMENTS_SIMULATOR_DB", "var/payments-simulator.sqlite3")
    )
    parser.add_argument(
        "--hang-seconds",
        type=float,
        default=float(env("PAYMENTS_SIMULATOR_HANG_SECONDS", "60")),
        help="how late the hanging test cards' answers come",
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=float(env("PAYMENTS_SIMULATOR_SLOW_SECONDS", "6")),
        help="how late the slow test card's charge is answered",
    )
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our own JSON line per request
    if args.db != ":memory:":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    app = PaymentsSimulator(
        Store(args.db), Behaviour(hang_seconds=args.hang_seconds, slow_seconds=args.slow_seconds)
    )
    server = make_server(args.host, args.port, app, threaded=True)

    def stop(signum, frame):  # the server's loop ends; answers being delayed are dropped
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("listening", host=args.host, port=server.server_port, db=args.db)
    server.serve_forever()
    log("stopped")


if __name__ == "__main__":
    main()
