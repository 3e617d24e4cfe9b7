"""iam-agency's entrypoints: load and check the input, call one use case, dump."""

from __future__ import annotations

import datetime as dt

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from iam_agency import usecases
from iam_agency.cloud import IamCloud, Keys
from iam_agency.credentials import CredentialCache
from iam_agency.models import metadata
from iam_agency.repository import REPOSITORIES
from iam_agency.settings import AGENCY_CHECK_SWEEP_SECONDS, Settings
from mercato.contracts import iam_agency as contract
from mercato.db import Database
from mercato.errors import EXPECTED, NotFound
from mercato.identity import BUYER, OPERATOR, RESELLER, SELLER, Identity
from mercato.service import MercatoService
from mercato.timers import configured_timer
from mercato.transport import rpc
from mercato.validation import StrictBoolean, StrictSchema, dump, load

TOKEN_TTL_KEY = "TOKEN_TTL_SECONDS"  # noqa: S105 - a config key
DEFAULT_TOKEN_TTL_SECONDS = 12 * 3600
DEFAULT_CHECK_SWEEP_SECONDS = 30.0


class Agencies(DependencyProvider):
    """The agency use cases' settings, the cloud's IAM and this process's credential
    cache, made once at start (a bad setting stops the service there)."""

    def setup(self) -> None:
        settings = Settings.from_config(self.container.config)
        self.deps = usecases.AgencyDeps(settings, IamCloud(settings.cloud), CredentialCache())

    def get_dependency(self, worker_ctx) -> usecases.AgencyDeps:
        return self.deps


def _internal_caller_may_ask(caller: Identity | None, account_id: str) -> None:
    """The internal agency RPCs (never on the gateway) answer another service's own
    work (a timer's signed service identity) or a request made for the account itself;
    anyone else, an anonymous caller or an operator included, learns nothing."""
    if caller is None or (not caller.is_service and caller.account_id != account_id):
        raise NotFound("cloud account not found")


class IamAgencyService(MercatoService):
    name = "iam_agency"

    db = Database(metadata, repositories=REPOSITORIES)
    config = Config()
    agencies = Agencies()

    @property
    def _token_ttl(self) -> dt.timedelta:
        seconds = self.config.get(TOKEN_TTL_KEY, DEFAULT_TOKEN_TTL_SECONDS)
        return dt.timedelta(seconds=int(seconds))

    @rpc(expected_exceptions=EXPECTED)
    def sign_up(self, payload: dict) -> dict:
        """Open a buyer, seller or reseller account: ``{name, email, password, type}``."""
        data = load(contract.SignUpRequest, payload)
        account = usecases.sign_up(self.db, self.clock, request_key=self.caller.request_key, **data)
        return dump(contract.AccountResponse, account)

    @rpc(expected_exceptions=EXPECTED)
    def create_reseller_customer(self, payload: dict) -> dict:
        """A reseller opens a buyer account it pays for: ``{name, email, password}``."""
        reseller = self.caller.require_role(RESELLER)
        data = load(contract.ResellerCustomerRequest, payload)
        customer = usecases.open_reseller_customer(
            self.db,
            self.clock,
            reseller_account_id=reseller.account_id,
            request_key=self.caller.request_key,
            **data,
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
    def change_time_zone(self, payload: dict) -> dict:
        """``{time_zone}``: the caller's account's IANA time zone (a buyer's, a
        seller's or a reseller's); answers the account ``{id, name, type, time_zone}``."""
        caller = self.caller.require_role(BUYER, SELLER, RESELLER)
        data = load(contract.AccountTimeZoneRequest, payload)
        account = usecases.change_time_zone(
            self.db, self.clock, account_id=caller.account_id, **data
        )
        return dump(contract.AccountSummary, account)

    # -- enterprise projects (guide section 2.3) ----------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def get_enterprise_project(self, project_id: str) -> dict:
        """One of the caller's enterprise projects (orders check the one an order names)."""
        caller = self.caller.require()
        project = usecases.enterprise_project(
            self.db, account_id=caller.account_id, project_id=str(project_id)
        )
        return dump(contract.EnterpriseProjectResponse, project)

    @rpc(expected_exceptions=EXPECTED)
    def create_enterprise_project(self, payload: dict) -> dict:
        """``{name, description?, type?}``: a new enabled project of the buyer's account."""
        buyer = self.caller.require_role(BUYER)
        data = load(contract.EnterpriseProjectRequest, payload)
        project = usecases.create_enterprise_project(
            self.db,
            self.clock,
            account_id=buyer.account_id,
            request_key=self.caller.request_key,
            **data,
        )
        return dump(contract.EnterpriseProjectResponse, project)

    @rpc(expected_exceptions=EXPECTED)
    def list_enterprise_projects(self, query: dict | None = None) -> dict:
        """A page of the buyer's projects, ``default`` first (``{status?, page, page_size}``)."""
        buyer = self.caller.require_role(BUYER)
        data = load(contract.EnterpriseProjectsQuery, query or {})
        projects = usecases.list_enterprise_projects(self.db, account_id=buyer.account_id, **data)
        return dump(contract.EnterpriseProjectPage, projects)

    @rpc(expected_exceptions=EXPECTED)
    def disable_enterprise_project(self, project_id: str) -> dict:
        """No order may name the project from now on (``default`` is never disabled)."""
        buyer = self.caller.require_role(BUYER)
        project = usecases.disable_enterprise_project(
            self.db, self.clock, account_id=buyer.account_id, project_id=str(project_id)
        )
        return dump(contract.EnterpriseProjectResponse, project)

    @rpc(expected_exceptions=EXPECTED)
    def enable_enterprise_project(self, project_id: str) -> dict:
        """A disabled project may be named by orders again."""
        buyer = self.caller.require_role(BUYER)
        project = usecases.enable_enterprise_project(
            self.db, self.clock, account_id=buyer.account_id, project_id=str(project_id)
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

    # -- cloud account and agencies (guide section 9) -----------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def link_cloud_account(self, payload: dict) -> dict:
        """``{provider, region, domain_id, project_id}``: the buyer's cloud account."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.CloudAccountRequest, payload)
        linked = usecases.link_cloud_account(
            self.db, self.clock, self.agencies, account_id=buyer.account_id, request=request
        )
        return dump(contract.CloudAccountResponse, linked)

    @rpc(expected_exceptions=EXPECTED)
    def get_cloud_account(self) -> dict:
        buyer = self.caller.require_role(BUYER)
        return dump(
            contract.CloudAccountResponse,
            usecases.get_cloud_account(self.db, account_id=buyer.account_id),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_agencies(self) -> dict:
        """Both agencies with their status and policy, and the deprecated ones found."""
        buyer = self.caller.require_role(BUYER)
        return dump(
            contract.AgenciesResponse,
            usecases.list_agencies(self.db, self.agencies, account_id=buyer.account_id),
        )

    @rpc(expected_exceptions=EXPECTED)
    def authorize_agencies(self, payload: dict) -> dict:
        """``{access_key, secret_key}`` of a user of the buyer's cloud account allowed to
        manage IAM: both agencies created or updated and granted; the keys forgotten."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.AgencyAuthorizationRequest, payload)
        keys = Keys(request["access_key"], request["secret_key"])
        agencies = usecases.authorize_agencies(
            self.db,
            self.clock,
            self.agencies,
            account_id=buyer.account_id,
            keys=keys,
            request_key=self.caller.request_key,
        )
        return dump(contract.AgenciesResponse, agencies)

    @rpc(expected_exceptions=EXPECTED)
    def check_agencies(self) -> dict:
        """Check both agencies in the cloud now; answers them as ``list_agencies``."""
        buyer = self.caller.require_role(BUYER)
        checked = usecases.check_agencies(
            self.db, self.clock, self.agencies, account_id=buyer.account_id
        )
        return dump(contract.AgenciesResponse, checked)

    @rpc(expected_exceptions=EXPECTED)
    def delete_agency(self, name: str) -> dict:
        """Cancel an agency's authorisation at once and delete it in the cloud."""
        buyer = self.caller.require_role(BUYER)
        remaining = usecases.delete_agency(
            self.db, self.clock, self.agencies, account_id=buyer.account_id, name=str(name)
        )
        return dump(contract.AgenciesResponse, remaining)

    @rpc(expected_exceptions=EXPECTED)
    def simulate_agency_action(self, payload: dict) -> dict:
        """``{agency, action}``: the decision of the policy granted to the agency."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.AgencySimulationRequest, payload)
        decision = usecases.simulate_agency_action(
            self.db, self.agencies, account_id=buyer.account_id, **request
        )
        return dump(contract.AgencySimulationResponse, decision)

    @rpc(expected_exceptions=EXPECTED)
    def deployment_readiness(self, account_id: str) -> dict:
        """Internal (orders, before placing an image order): may a deployment start in
        the account? From the agencies' state here, without a cloud call."""
        account_id = str(account_id)
        _internal_caller_may_ask(self.caller.identity, account_id)
        return dump(
            contract.DeploymentReadinessResponse,
            usecases.deployment_readiness(self.db, self.agencies, account_id=account_id),
        )

    @rpc(expected_exceptions=EXPECTED)
    def agency_credentials(self, account_id: str, check: bool = False) -> dict:
        """Internal (provisioning): temporary credentials of the account's
        mkp_agency_trust and its policy; ``check`` checks the agencies in the cloud
        first. Never logged."""
        account_id = str(account_id)
        _internal_caller_may_ask(self.caller.identity, account_id)
        check = load(_CheckFlag, {"check": check})["check"]
        credentials = usecases.agency_credentials(
            self.db, self.clock, self.agencies, account_id=account_id, check=check
        )
        return dump(contract.AgencyCredentialsResponse, credentials)

    @configured_timer(AGENCY_CHECK_SWEEP_SECONDS, DEFAULT_CHECK_SWEEP_SECONDS)
    def run_due_checks(self) -> None:
        """The scheduled checks of authorised agencies (``AGENCY_CHECK_SECONDS`` apart).
        Safe with two replicas: each holds the accounts it checks."""
        while usecases.run_due_checks(self.db, self.clock, self.agencies) > 0:
            pass


class _CheckFlag(StrictSchema):
    check = StrictBoolean(required=True)
