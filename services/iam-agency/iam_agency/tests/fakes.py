"""An in-memory stand-in for iam-agency's repository, for use-case tests."""

from __future__ import annotations

from iam_agency.models import Account, ApiToken, EnterpriseProject, User
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
