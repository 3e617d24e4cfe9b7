"""iam-agency's use cases. Each takes a unit of work (``uow.accounts`` is the
repository; ``emit``, ``commit``) and a clock, so it runs the same under nameko, in the
command line and in unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from iam_agency import domain
from iam_agency.models import Account, ApiToken, EnterpriseProject, User
from iam_agency.repository import EmailTaken
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import Conflict, NotFound, Unauthenticated
from mercato.identity import ACCOUNT_TYPES, BUYER, RESELLER


def open_account(
    uow,
    clock: Clock,
    *,
    name: str,
    email: str,
    password: str,
    type: str,
    reseller_account_id: str | None = None,
) -> dict[str, Any]:
    """Create an account with its first user and its ``default`` enterprise project."""
    if type not in ACCOUNT_TYPES:
        raise ValueError(f"unknown account type {type}")
    email = domain.normalise_email(email)
    if uow.accounts.email_taken(email):
        raise Conflict(f"{email} already has an account", code="EMAIL_TAKEN")
    password_hash = domain.hash_password(password)
    now = clock.now()
    account = Account(
        id=new_id("acc"),
        name=name,
        type=type,
        reseller_account_id=reseller_account_id,
        created_at=now,
    )
    user = User(
        id=new_id("usr"),
        account_id=account.id,
        email=email,
        password_hash=password_hash,
        roles=domain.ROLES_BY_ACCOUNT_TYPE[type],
        created_at=now,
    )
    project = EnterpriseProject(
        account_id=account.id,
        id=domain.DEFAULT_PROJECT_ID,
        name="default",
        status="enabled",
        created_at=now,
    )
    try:
        uow.accounts.add_account(account, user, project)
    except EmailTaken:  # two sign-ups with one email at once: one got through
        raise Conflict(f"{email} already has an account", code="EMAIL_TAKEN") from None
    uow.emit(
        "iam_agency.account.created",
        subject=account.id,
        account_id=account.id,
        data={
            "account_id": account.id,
            "name": account.name,
            "type": account.type,
            "reseller_account_id": reseller_account_id,
        },
    )
    uow.commit()
    return {"id": account.id, "name": account.name, "email": email, "type": account.type}


def issue_token(
    uow, clock: Clock, *, email: str, password: str, ttl: dt.timedelta
) -> dict[str, Any]:
    user = uow.accounts.user_by_email(domain.normalise_email(email))
    if not domain.verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthenticated("wrong email or password")
    token, digest = domain.new_token()
    now = clock.now()
    uow.accounts.add_token(
        ApiToken(
            id=new_id("tok"),
            user_id=user.id,
            digest=digest,
            created_at=now,
            expires_at=now + ttl,
            revoked_at=None,
        )
    )
    uow.commit()
    return {"token": token, "expires_at": now + ttl}


def authenticate(uow, clock: Clock, token: str) -> dict[str, Any]:
    """The identity behind a bearer token; Unauthenticated if unknown, expired or revoked."""
    if not token or not domain.looks_like_token(token):
        raise Unauthenticated("invalid token")
    row = uow.accounts.token_with_owner(domain.token_digest(token))
    if row is None:
        raise Unauthenticated("invalid token")
    api_token, user, account = row
    if not domain.token_is_live(api_token.expires_at, api_token.revoked_at, clock.now()):
        raise Unauthenticated("token expired or revoked")
    return {
        "account_id": account.id,
        "account_type": account.type,
        "account_name": account.name,
        "user_id": user.id,
        "email": user.email,
        "roles": list(user.roles),
        "reseller_account_id": account.reseller_account_id,
        "expires_at": api_token.expires_at,
    }


def open_reseller_customer(
    uow, clock: Clock, *, reseller_account_id: str, name: str, email: str, password: str
) -> dict[str, Any]:
    """A buyer account associated with a reseller, who pays for its orders."""
    reseller = uow.accounts.account(reseller_account_id)
    if reseller is None or reseller.type != RESELLER:
        raise NotFound("reseller account not found")
    customer = open_account(
        uow,
        clock,
        name=name,
        email=email,
        password=password,
        type=BUYER,
        reseller_account_id=reseller_account_id,
    )
    return {**customer, "reseller_account_id": reseller_account_id}


def revoke_token(uow, clock: Clock, token: str, *, user_id: str) -> None:
    api_token = uow.accounts.token(domain.token_digest(token))
    if api_token is None or api_token.user_id != user_id:
        raise NotFound("token not found")
    if api_token.revoked_at is None:
        api_token.revoked_at = clock.now()
    uow.commit()


def describe_caller(uow, *, account_id: str, user_id: str) -> dict[str, Any]:
    row = uow.accounts.user_with_account(account_id, user_id)
    if row is None:
        raise NotFound("account not found")
    user, account = row
    return {
        "account": {"id": account.id, "name": account.name, "type": account.type},
        "user": {"id": user.id, "email": user.email},
        "roles": list(user.roles),
    }


def enterprise_project(uow, *, account_id: str, project_id: str) -> dict[str, Any]:
    project = uow.accounts.enterprise_project(account_id, project_id)
    if project is None:
        raise NotFound(f"enterprise project {project_id} not found")
    return {"id": project.id, "name": project.name, "status": project.status}


def account_cards(uow, *, account_ids: list[str], contact_account_ids: list[str]) -> dict:
    """The name of each known account in ``account_ids`` (in that order, each once), and
    the email of its first user for those in ``contact_account_ids``. Two reads, whatever
    the number of accounts; an unknown account is left out."""
    wanted = list(dict.fromkeys(account_ids))
    names = uow.accounts.names(wanted)
    contacts = [
        account_id for account_id in dict.fromkeys(contact_account_ids) if account_id in names
    ]
    emails = uow.accounts.first_emails(contacts) if contacts else {}
    cards = []
    for account_id in wanted:
        if account_id not in names:
            continue
        card = {"account_id": account_id, "name": names[account_id]}
        if account_id in emails:
            card["email"] = emails[account_id]
        cards.append(card)
    return {"items": cards}
