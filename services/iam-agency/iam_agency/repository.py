"""Where iam-agency keeps accounts, users, API tokens and enterprise projects
(``uow.accounts``), and cloud accounts with their agencies (``uow.agencies``): every
statement behind named methods.

The scheduled checks find their accounts with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL;
SQLite runs one writer at a time) and hold them by a lease (``check_claimed_until``),
so two replicas never check one account at once, and an account a crashed replica held
is checked again once its lease ran out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from iam_agency.domain import DEFAULT_PROJECT_ID
from iam_agency.models import Account, Agency, ApiToken, CloudAccount, EnterpriseProject, User
from mercato.request_keys import RequestKeys


class EmailTaken(Exception):
    """The unique index on users' emails let another sign-up through first."""


class ProjectNameTaken(Exception):
    """The unique index on an account's project names (lower-cased) let another
    project of that name through first."""


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def email_taken(self, email: str) -> bool:
        return self.session.scalar(sa.select(User.id).where(User.email == email)) is not None

    def add_account(self, account: Account, user: User, project: EnterpriseProject) -> None:
        """A new account with its first user and project, written at once, so that of
        two sign-ups with one email at the same moment the second fails here
        (``EmailTaken``; its transaction is rolled back) rather than at commit."""
        self.session.add_all([account, user, project])
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise EmailTaken(user.email) from None

    def account(self, account_id: str) -> Account | None:
        return self.session.get(Account, account_id)

    def lock_account(self, account_id: str) -> Account | None:
        """The account, locked until the transaction ends (a time zone change)."""
        return self.session.scalar(
            sa.select(Account)
            .where(Account.id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(sa.select(User).where(User.email == email))

    def user_with_account(self, account_id: str, user_id: str) -> tuple[User, Account] | None:
        row = self.session.execute(
            sa.select(User, Account)
            .join(Account, User.account_id == Account.id)
            .where(User.id == user_id, Account.id == account_id)
        ).first()
        return None if row is None else (row[0], row[1])

    def add_token(self, token: ApiToken) -> None:
        self.session.add(token)

    def token(self, digest: str) -> ApiToken | None:
        return self.session.scalar(sa.select(ApiToken).where(ApiToken.digest == digest))

    def token_with_owner(self, digest: str) -> tuple[ApiToken, User, Account] | None:
        """The token with its user and account, in one read (every request's question)."""
        row: Any = self.session.execute(
            sa.select(ApiToken, User, Account)
            .join(User, ApiToken.user_id == User.id)
            .join(Account, User.account_id == Account.id)
            .where(ApiToken.digest == digest)
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    def names(self, account_ids: list[str]) -> dict[str, str]:
        """The name of each known account among ``account_ids``, by id."""
        rows = self.session.execute(
            sa.select(Account.id, Account.name).where(Account.id.in_(account_ids))
        )
        return {account_id: name for account_id, name in rows}

    def first_emails(self, account_ids: list[str]) -> dict[str, str]:
        """The email of each account's first user (the one sign-up created), by id."""
        rows = self.session.execute(
            sa.select(User.account_id, User.email)
            .where(User.account_id.in_(account_ids))
            .order_by(User.created_at, User.id)
        )
        emails: dict[str, str] = {}
        for account_id, email in rows:
            emails.setdefault(account_id, email)
        return emails

    def enterprise_project(self, account_id: str, project_id: str) -> EnterpriseProject | None:
        return self.session.get(EnterpriseProject, (account_id, project_id))

    def lock_enterprise_project(self, account_id: str, project_id: str) -> EnterpriseProject | None:
        """The project, locked until the transaction ends (a disable or an enable)."""
        return self.session.scalar(
            sa.select(EnterpriseProject)
            .where(EnterpriseProject.account_id == account_id, EnterpriseProject.id == project_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def project_name_taken(self, account_id: str, name: str) -> bool:
        """Whether the account has a project of this name, whatever its case."""
        return (
            self.session.scalar(
                sa.select(EnterpriseProject.id).where(
                    EnterpriseProject.account_id == account_id,
                    sa.func.lower(EnterpriseProject.name) == name.lower(),
                )
            )
            is not None
        )

    def add_enterprise_project(self, project: EnterpriseProject) -> None:
        """Write the new project now: of two projects of one name created at once, the
        second fails here (``ProjectNameTaken``), its savepoint alone rolled back."""
        try:
            with self.session.begin_nested():
                self.session.add(project)
        except IntegrityError:
            raise ProjectNameTaken(project.name) from None

    def enterprise_projects(
        self, account_id: str, *, status: str | None, offset: int, limit: int
    ) -> tuple[list[EnterpriseProject], int]:
        """A page of the account's projects (``default`` first, then the oldest first)
        and how many there are in all, of ``status`` when given."""
        where = [EnterpriseProject.account_id == account_id]
        if status is not None:
            where.append(EnterpriseProject.status == status)
        total = self.session.scalar(
            sa.select(sa.func.count()).select_from(EnterpriseProject).where(*where)
        )
        rows = self.session.scalars(
            sa.select(EnterpriseProject)
            .where(*where)
            .order_by(
                sa.case((EnterpriseProject.id == DEFAULT_PROJECT_ID, 0), else_=1),
                EnterpriseProject.created_at,
                EnterpriseProject.id,
            )
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total or 0)


class AgencyRepository:
    """Cloud accounts and their agencies."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def cloud_account(self, account_id: str) -> CloudAccount | None:
        return self.session.get(CloudAccount, account_id)

    def lock_cloud_account(self, account_id: str) -> CloudAccount | None:
        return self.session.scalar(
            sa.select(CloudAccount)
            .where(CloudAccount.account_id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def add_cloud_account(self, cloud_account: CloudAccount) -> None:
        self.session.add(cloud_account)
        self.session.flush()

    def agencies(self, account_id: str) -> dict[str, Agency]:
        """The account's agencies by name (those ever written)."""
        rows = self.session.scalars(sa.select(Agency).where(Agency.account_id == account_id))
        return {agency.name: agency for agency in rows}

    def lock_agencies(self, account_id: str) -> dict[str, Agency]:
        rows = self.session.scalars(
            sa.select(Agency)
            .where(Agency.account_id == account_id)
            .order_by(Agency.name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {agency.name: agency for agency in rows}

    def add_agency(self, agency: Agency) -> None:
        self.session.add(agency)

    def claim_due_checks(self, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[str]:
        """Up to ``limit`` accounts whose check is due and that no replica holds, the
        longest due first, now held until ``lease_until`` (committed by the caller)."""
        due = (
            sa.select(CloudAccount)
            .where(
                CloudAccount.check_due_at <= now,
                sa.or_(
                    CloudAccount.check_claimed_until.is_(None),
                    CloudAccount.check_claimed_until <= now,
                ),
            )
            .order_by(CloudAccount.check_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        claimed = list(self.session.scalars(due))
        for cloud_account in claimed:
            cloud_account.check_claimed_until = lease_until
        return [cloud_account.account_id for cloud_account in claimed]


# what a unit of work of iam-agency offers its use cases (the service and the CLI)
REPOSITORIES = {
    "accounts": AccountRepository,
    "agencies": AgencyRepository,
    "request_keys": RequestKeys,
}
