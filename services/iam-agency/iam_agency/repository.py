"""Where iam-agency keeps accounts, users, API tokens and enterprise projects: every
statement behind named methods (``uow.accounts``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from iam_agency.models import Account, ApiToken, EnterpriseProject, User


class EmailTaken(Exception):
    """The unique index on users' emails let another sign-up through first."""


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


# what a unit of work of iam-agency offers its use cases (the service and the CLI)
REPOSITORIES = {"accounts": AccountRepository}
