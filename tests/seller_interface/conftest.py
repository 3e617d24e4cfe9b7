"""Sellers as real processes: the reference app (examples/seller-saas) and a lax stub.

The root conftest monkey-patches the standard library with eventlet, so a seller never
runs inside the test process: each is a subprocess on a free port (``--port 0``; the
port is read back from its first log line), its stdout kept in a file for assertions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mercato_testing.seller import Seller, reference_seller
from seller_interface import SellerClient, new_access_key, new_secret

LAX_SELLER = Path(__file__).with_name("lax_seller.py")


@pytest.fixture
def start_seller(tmp_path_factory) -> Iterator:
    """``start_seller(fault="hang", provision_delay=0.2, db=path)``: a running reference app."""
    started: list[Seller] = []

    def start(
        fault: str = "none",
        provision_delay: float = 0.2,
        db: Path | None = None,
        access_key: str | None = None,
        secret: str | None = None,
    ) -> Seller:
        directory = tmp_path_factory.mktemp("seller")
        seller = reference_seller(
            directory,
            access_key or new_access_key(),
            secret or new_secret(),
            fault=fault,
            provision_delay=provision_delay,
            db=db,
        ).start()
        started.append(seller)
        return seller

    yield start
    for seller in started:
        seller.stop()


@pytest.fixture(scope="module")
def seller(tmp_path_factory) -> Iterator[Seller]:
    """One reference app shared by a module's tests (each test uses its own order lines)."""
    directory = tmp_path_factory.mktemp("seller")
    started = reference_seller(directory, new_access_key(), new_secret()).start()
    yield started
    started.stop()


@pytest.fixture
def client(seller) -> Iterator[SellerClient]:
    with seller.client() as seller_client:
        yield seller_client


@pytest.fixture
def start_lax_seller(tmp_path_factory) -> Iterator:
    """``start_lax_seller(mode="lax")``: the broken stub of lax_seller.py."""
    started: list[Seller] = []

    def start(mode: str = "lax") -> Seller:
        directory = tmp_path_factory.mktemp("lax")
        access_key, secret = new_access_key(), new_secret()
        args = [
            str(LAX_SELLER),
            "--port=0",
            f"--access-key={access_key}",
            f"--secret={secret}",
            f"--mode={mode}",
        ]
        stub = Seller(args, directory / "stdout.log", access_key, secret).start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()
