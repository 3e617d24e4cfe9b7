"""``mercato-create-operator``: the only way to create an operator account.

Operators are never created through the public API. This command writes straight to
iam-agency's database (the one its config.yaml names, so the same environment
variables) and leaves the ``iam_agency.account.created`` event in the outbox, which
the running service's relay publishes on its next sweep.

    mercato-create-operator --name "Ops" --email ops@example.com   # password from
    MERCATO_OPERATOR_PASSWORD, else asked on the terminal
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

import eventlet

from iam_agency import usecases
from iam_agency.models import metadata
from iam_agency.repository import REPOSITORIES
from mercato.clock import SystemClock
from mercato.contracts.iam_agency import SignUpRequest
from mercato.errors import MercatoError
from mercato.standalone import standalone_unit_of_work
from mercato.topology import BY_NAME
from mercato.validation import load


def create_operator(database_url: str, *, name: str, email: str, password: str) -> dict:
    # an operator signs in like anyone else: the same rules for name, email, password
    data = load(
        SignUpRequest, {"name": name, "email": email, "password": password, "type": "buyer"}
    )
    with standalone_unit_of_work(
        database_url,
        metadata,
        service_name="iam_agency",
        command="create_operator",
        repositories=REPOSITORIES,
    ) as uow:
        return usecases.open_account(
            uow,
            SystemClock(),
            name=data["name"],
            email=data["email"],
            password=data["password"],
            type="operator",
        )


def create_operator_main(argv: list[str] | None = None) -> int:
    eventlet.monkey_patch()
    from mercato import config

    parser = argparse.ArgumentParser(description="Create a Mercato operator account.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password", help="default: $MERCATO_OPERATOR_PASSWORD, else asked on the terminal"
    )
    parser.add_argument("--if-missing", action="store_true", help="succeed if the email exists")
    args = parser.parse_args(argv)
    password = args.password or os.environ.get("MERCATO_OPERATOR_PASSWORD") or getpass.getpass()
    database_url = config.load(BY_NAME["iam_agency"].config_path)[config.DATABASE_URL]
    try:
        account = create_operator(database_url, name=args.name, email=args.email, password=password)
    except MercatoError as exc:
        if args.if_missing and exc.code == "EMAIL_TAKEN":
            print(json.dumps({"exists": args.email}))
            return 0
        print(json.dumps(exc.to_body()), file=sys.stderr)
        return 1
    print(json.dumps(account))
    return 0


if __name__ == "__main__":
    sys.exit(create_operator_main())
