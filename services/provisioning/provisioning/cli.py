"""``mercato-reseal-credentials``: seal every secret provisioning keeps under the first
key of ``PROVISIONING_CREDENTIAL_KEYS``, so that an old key can be retired.

Key rotation (docs/operations.md): put a new key first and keep the old ones, roll the
pods, run this command, check it reports nothing left under the old key, then remove
the old key. It reads provisioning's database from its config.yaml (so from the same
environment variables as the service), works in batches that lock their rows, and is
safe to run twice or beside the running service (a row sealed meanwhile is already
under the first key).

    mercato-reseal-credentials            # re-seal, then print what is sealed under which key
    mercato-reseal-credentials --dry-run  # only print it
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from mercato import config
from mercato.standalone import standalone_unit_of_work
from mercato.topology import BY_NAME
from provisioning import deployments
from provisioning.domain import interface_binding, password_binding, signing_binding
from provisioning.keyring import KEYS_CONFIG, Keyring, Sealed
from provisioning.models import (
    Delivery,
    Deployment,
    SellerInterfaceKey,
    SellerSigningKey,
    metadata,
)

BATCH = 200


class _Sealing:
    """Where one kind of sealed secret lives and what its associated data is."""

    def __init__(
        self,
        model: Any,
        key_id: Any,
        sealed: Any,
        binding: Callable[[Any], str],
        order_by: Any,
    ) -> None:
        self.model, self.key_id, self.sealed = model, key_id, sealed
        self.binding, self.order_by = binding, order_by


SEALINGS = {
    "delivered passwords": _Sealing(
        Delivery,
        Delivery.password_key_id,
        Delivery.password_sealed,
        lambda row: password_binding(row.account_id, row.subscription_id),
        Delivery.id,
    ),
    "seller interface secrets": _Sealing(
        SellerInterfaceKey,
        SellerInterfaceKey.secret_key_id,
        SellerInterfaceKey.secret_sealed,
        lambda row: interface_binding(row.seller_account_id, row.access_key),
        SellerInterfaceKey.seller_account_id,
    ),
    "license signing keys": _Sealing(
        SellerSigningKey,
        SellerSigningKey.private_key_id,
        SellerSigningKey.private_sealed,
        lambda row: signing_binding(row.seller_account_id),
        SellerSigningKey.seller_account_id,
    ),
    "deployment passwords": _Sealing(
        Deployment,
        Deployment.password_key_id,
        Deployment.password_sealed,
        lambda row: deployments.password_binding(row.account_id, row.id),
        Deployment.id,
    ),
}


def reseal(uow, keyring: Keyring) -> int:
    """Re-seal every secret not under the active key; answers how many."""
    done = 0
    for sealing in SEALINGS.values():
        while True:
            rows = uow.session.scalars(
                sa.select(sealing.model)
                .where(sealing.key_id.is_not(None), sealing.key_id != keyring.active_key_id)
                .order_by(sealing.order_by)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                break
            for row in rows:
                key_id_attr, sealed_attr = sealing.key_id.key, sealing.sealed.key
                binding = sealing.binding(row)
                plaintext = keyring.open(
                    Sealed(getattr(row, key_id_attr), getattr(row, sealed_attr)), bound_to=binding
                )
                fresh = keyring.seal(plaintext, bound_to=binding)
                setattr(row, key_id_attr, fresh.key_id)
                setattr(row, sealed_attr, fresh.ciphertext)
            uow.commit()
            done += len(rows)
    return done


def census(uow) -> dict[str, dict[str, int]]:
    """How many secrets of each kind are sealed under each key id."""
    report = {}
    for name, sealing in SEALINGS.items():
        counts = Counter(
            dict(
                uow.session.execute(
                    sa.select(sealing.key_id, sa.func.count())
                    .where(sealing.key_id.is_not(None))
                    .group_by(sealing.key_id)
                ).all()
            )
        )
        report[name] = dict(sorted(counts.items()))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="only report the key census")
    args = parser.parse_args(argv)
    loaded = config.load(BY_NAME["provisioning"].config_path)
    try:
        keyring = Keyring.from_spec(loaded.get(KEYS_CONFIG))
    except ValueError as exc:
        print(f"mercato-reseal-credentials: {exc}", file=sys.stderr)
        return 2
    with standalone_unit_of_work(
        str(loaded[config.DATABASE_URL]),
        metadata,
        service_name="provisioning",
        command="reseal_credentials",
    ) as uow:
        resealed = 0 if args.dry_run else reseal(uow, keyring)
        report = {"active_key_id": keyring.active_key_id, "resealed": resealed, **census(uow)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
