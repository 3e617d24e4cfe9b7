"""iam-agency's entrypoints: load and check the input, call one use case, dump."""

from __future__ import annotations

import datetime as dt

from nameko.dependency_providers import Config

from iam_agency import usecases
from iam_agency.models import metadata
from iam_agency.repository import REPOSITORIES
from mercato.contracts import iam_agency as contract
from mercato.db import Database
from mercato.errors import EXPECTED
from mercato.identity import OPERATOR, RESELLER, SELLER
from mercato.service import MercatoService
from mercato.transport import rpc
from mercato.validation import dump, load

TOKEN_TTL_KEY = "TOKEN_TTL_SECONDS"  # noqa: S105 - a config key
DEFAULT_TOKEN_TTL_SECONDS = 12 * 3600


class IamAgencyService(MercatoService):
    name = "iam_agency"

    db = Database(metadata, repositories=REPOSITORIES)
    config = Config()

    @property
    def _token_ttl(self) -> dt.timedelta:
        seconds = self.config.get(TOKEN_TTL_KEY, DEFAULT_TOKEN_TTL_SECONDS)
        return dt.timedelta(seconds=int(seconds))

    @rpc(expected_exceptions=EXPECTED)
    def sign_up(self, payload: dict) -> dict:
        """Open a buyer, seller or reseller account: ``{name, email, password, type}``."""
        data = load(contract.SignUpRequest, payload)
        account = usecases.open_account(self.db, self.clock, **data)
        return dump(contract.AccountResponse, account)

    @rpc(expected_exceptions=EXPECTED)
    def create_reseller_customer(self, payload: dict) -> dict:
        """A reseller opens a buyer account it pays for: ``{name, email, password}``."""
        reseller = self.caller.require_role(RESELLER)
        data = load(contract.ResellerCustomerRequest, payload)
        customer = usecases.open_reseller_customer(
            self.db, self.clock, reseller_account_id=reseller.account_id, **data
        )
        return dump(contract.ResellerCustomerResponse, customer)

    @rpc(expected_exceptions=EXPECTED)
    def issue_token(self, payload: dict) -> dict:
        """Sign in with ``{email, password}``; answers ``{token, expires_at}``."""
        data = load(contract.SignInRequest, payload)
        issued = usecases.issue_token(self.db, self.clock, ttl=self._token_ttl, **data)
        return dump(contract.TokenResponse, issued)

    @rpc(expected_exceptions=EXPECTED)
    def authenticate(self, token: str) -> dict:
        """The identity behind a bearer token (the gateway calls this on every request)."""
        identity = usecases.authenticate(
            self.db, self.clock, token if isinstance(token, str) else ""
        )
        return dump(contract.AuthenticatedResponse, identity)

    @rpc(expected_exceptions=EXPECTED)
    def revoke_token(self, token: str) -> None:
        caller = self.caller.require()
        usecases.revoke_token(self.db, self.clock, token, user_id=caller.user_id)

    @rpc(expected_exceptions=EXPECTED)
    def me(self) -> dict:
        """The caller's account, user and roles."""
        caller = self.caller.require()
        described = usecases.describe_caller(
            self.db, account_id=caller.account_id, user_id=caller.user_id
        )
        return dump(contract.MeResponse, described)

    @rpc(expected_exceptions=EXPECTED)
    def get_enterprise_project(self, project_id: str) -> dict:
        """One of the caller's enterprise projects (orders check the one an order names)."""
        caller = self.caller.require()
        project = usecases.enterprise_project(
            self.db, account_id=caller.account_id, project_id=str(project_id)
        )
        return dump(contract.EnterpriseProjectResponse, project)

    @rpc(expected_exceptions=EXPECTED)
    def account_cards(self, payload: dict) -> dict:
        """Name accounts for a seller's (or an operator's) page, in one call:
        ``{"account_ids": [...], "contact_account_ids": [...]}`` (at most 100; the
        contacts among the accounts) answers ``{"items": [{account_id, name, email?}]}``,
        ``email`` only for the contacts. Which emails may be shown is the caller's to
        know: the gateway names the buyers that shared their contact with the orders it
        shows (orders' answer says which)."""
        self.caller.require_role(SELLER, OPERATOR)
        data = load(contract.AccountCardsRequest, payload)
        return dump(contract.AccountCardsResponse, usecases.account_cards(self.db, **data))
