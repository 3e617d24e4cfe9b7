"""In-memory stand-ins for iam-agency's repositories and the cloud's IAM, for use-case
tests."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable

from iam_agency.cloud import CloudAgency, CloudPolicy, Keys, TemporaryCredentials
from iam_agency.models import Account, Agency, ApiToken, CloudAccount, EnterpriseProject, User
from iam_agency.repository import EmailTaken
from mercato_testing.fakes import InMemoryRepository


class FakeAccountRepository(InMemoryRepository):
    def email_taken(self, email: str) -> bool:
        return any(user.email == email for user in self.table("users").values())

    def add_account(self, account: Account, user: User, project: EnterpriseProject) -> None:
        if self.email_taken(user.email):
            raise EmailTaken(user.email)
        self.table("accounts")[account.id] = account
        self.table("users")[user.id] = user
        self.table("projects")[(project.account_id, project.id)] = project

    def account(self, account_id: str) -> Account | None:
        return self.table("accounts").get(account_id)

    lock_account = account

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.table("users").values() if u.email == email), None)

    def user_with_account(self, account_id: str, user_id: str) -> tuple[User, Account] | None:
        user = self.table("users").get(user_id)
        if user is None or user.account_id != account_id:
            return None
        return user, self.table("accounts")[account_id]

    def add_token(self, token: ApiToken) -> None:
        self.table("tokens")[token.digest] = token

    def token(self, digest: str) -> ApiToken | None:
        return self.table("tokens").get(digest)

    def token_with_owner(self, digest: str) -> tuple[ApiToken, User, Account] | None:
        token = self.token(digest)
        if token is None:
            return None
        user = self.table("users")[token.user_id]
        return token, user, self.table("accounts")[user.account_id]

    def enterprise_project(self, account_id: str, project_id: str) -> EnterpriseProject | None:
        return self.table("projects").get((account_id, project_id))

    def names(self, account_ids: list[str]) -> dict[str, str]:
        accounts = self.table("accounts")
        return {id: accounts[id].name for id in account_ids if id in accounts}

    def first_emails(self, account_ids: list[str]) -> dict[str, str]:
        emails: dict[str, str] = {}
        users = sorted(self.table("users").values(), key=lambda user: (user.created_at, user.id))
        for user in users:
            if user.account_id in account_ids:
                emails.setdefault(user.account_id, user.email)
        return emails


class FakeAgencyRepository(InMemoryRepository):
    """Cloud accounts and agencies in memory (``uow.agencies``)."""

    def cloud_account(self, account_id: str) -> CloudAccount | None:
        return self.table("cloud_accounts").get(account_id)

    lock_cloud_account = cloud_account

    def add_cloud_account(self, cloud_account: CloudAccount) -> None:
        self.table("cloud_accounts")[cloud_account.account_id] = cloud_account

    def agencies(self, account_id: str) -> dict[str, Agency]:
        rows = self.table("agencies").values()
        return {
            row.name: row
            for row in sorted(rows, key=lambda r: r.name)
            if row.account_id == account_id
        }

    lock_agencies = agencies

    def add_agency(self, agency: Agency) -> None:
        self.table("agencies")[(agency.account_id, agency.name)] = agency

    def claim_due_checks(self, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[str]:
        due = [
            row
            for row in self.table("cloud_accounts").values()
            if row.check_due_at is not None
            and row.check_due_at <= now
            and (row.check_claimed_until is None or row.check_claimed_until <= now)
        ]
        due.sort(key=lambda row: row.check_due_at)
        for row in due[:limit]:
            row.check_claimed_until = lease_until
        return [row.account_id for row in due[:limit]]


class FakeIamSession:
    """One caller's view of ``FakeIam``'s one account."""

    def __init__(self, cloud: FakeIam) -> None:
        self.cloud = cloud

    def __enter__(self) -> FakeIamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def _maybe_fail(self, call: str) -> None:
        self.cloud.calls.append(call)
        failure = self.cloud.fail.get(call)
        if failure is not None:
            raise failure

    def list_agencies(self) -> list[CloudAgency]:
        self._maybe_fail("ListAgencies")
        if self.cloud.during_check is not None:
            self.cloud.during_check()
        return list(self.cloud.agencies.values())

    def create_agency(self, name, *, trust_domain_id, trust_domain_name, description):
        self._maybe_fail("CreateAgency")
        agency = CloudAgency(f"agency-{name}", name, trust_domain_id, trust_domain_name)
        self.cloud.agencies[name] = agency
        return agency

    def update_agency_trust(self, agency_id, *, trust_domain_id, trust_domain_name, description):
        name = next(n for n, a in self.cloud.agencies.items() if a.id == agency_id)
        self.cloud.agencies[name] = CloudAgency(agency_id, name, trust_domain_id, trust_domain_name)

    def delete_agency(self, agency_id: str) -> None:
        self._maybe_fail("DeleteAgency")
        self.cloud.agencies = {n: a for n, a in self.cloud.agencies.items() if a.id != agency_id}

    def list_custom_policies(self) -> list[CloudPolicy]:
        return list(self.cloud.policies.values())

    def show_custom_policy(self, role_id: str) -> CloudPolicy:
        self._maybe_fail("ShowCustomPolicy")
        return next(p for p in self.cloud.policies.values() if p.id == role_id)

    def create_custom_policy(self, name, description, document) -> CloudPolicy:
        policy = CloudPolicy(f"role-{name}", name, copy.deepcopy(document))
        self.cloud.policies[name] = policy
        return policy

    def update_custom_policy(self, role_id, name, description, document) -> None:
        self.cloud.policies[name] = CloudPolicy(role_id, name, copy.deepcopy(document))

    def grant(self, project_id: str, agency_id: str, role_id: str) -> None:
        self.cloud.grants.setdefault(agency_id, set()).add(role_id)

    def granted_role_ids(self, project_id: str, agency_id: str) -> set[str]:
        return set(self.cloud.grants.get(agency_id, set()))


class FakeIam:
    """``iam_agency.cloud.IamCloud`` in memory: one buyer account at the cloud; ``fail``
    maps a call's name to the ``CloudError`` it raises (until removed)."""

    def __init__(self) -> None:
        self.agencies: dict[str, CloudAgency] = {}
        self.policies: dict[str, CloudPolicy] = {}
        self.grants: dict[str, set[str]] = {}
        self.fail: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.assumed = 0
        self.during_check: Callable[[], None] | None = None

    configured = True

    def with_keys(self, keys: Keys, domain_id: str) -> FakeIamSession:
        return FakeIamSession(self)

    def with_temporary(self, credentials: TemporaryCredentials, domain_id: str) -> FakeIamSession:
        return FakeIamSession(self)

    def assume(
        self, agency_name: str, domain_id: str, duration_seconds: int
    ) -> TemporaryCredentials:
        self.calls.append("CreateTemporaryAccessKeyByAgency")
        failure = self.fail.get("CreateTemporaryAccessKeyByAgency")
        if failure is not None:
            raise failure
        self.assumed += 1
        return TemporaryCredentials(
            Keys(f"AKTEMP{self.assumed}", f"sk-{self.assumed}", f"token-{self.assumed}"),
            dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        )
