"""iam-agency's use cases. Each takes a unit of work (``session``, ``emit``,
``commit``) and a clock, so it runs the same under nameko, in the command line and in
unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from iam_agency import domain
from iam_agency.models import Account, ApiToken, EnterpriseProject, User
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
    session = uow.session
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
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
    session.add_all([account, user, project])
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
    try:
        uow.commit()
    except IntegrityError:
        # two sign-ups with one email at once: the unique index lets one through
        uow.rollback()
        raise Conflict(f"{email} already has an account", code="EMAIL_TAKEN") from None
    return {"id": account.id, "name": account.name, "email": email, "type": account.type}


def issue_token(
    uow, clock: Clock, *, email: str, password: str, ttl: dt.timedelta
) -> dict[str, Any]:
    session = uow.session
    user = session.scalar(sa.select(User).where(User.email == domain.normalise_email(email)))
    if not domain.verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthenticated("wrong email or password")
    token, digest = domain.new_token()
    now = clock.now()
    session.add(
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
    row = uow.session.execute(
        sa.select(ApiToken, User, Account)
        .join(User, ApiToken.user_id == User.id)
        .join(Account, User.account_id == Account.id)
        .where(ApiToken.digest == domain.token_digest(token))
    ).first()
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
    reseller = uow.session.get(Account, reseller_account_id)
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
    api_token = uow.session.scalar(
        sa.select(ApiToken).where(ApiToken.digest == domain.token_digest(token))
    )
    if api_token is None or api_token.user_id != user_id:
        raise NotFound("token not found")
    if api_token.revoked_at is None:
        api_token.revoked_at = clock.now()
    uow.commit()


def describe_caller(uow, *, account_id: str, user_id: str) -> dict[str, Any]:
    row = uow.session.execute(
        sa.select(User, Account)
        .join(Account, User.account_id == Account.id)
        .where(User.id == user_id, Account.id == account_id)
    ).first()
    if row is None:
        raise NotFound("account not found")
    user, account = row
    return {
        "account": {"id": account.id, "name": account.name, "type": account.type},
        "user": {"id": user.id, "email": user.email},
        "roles": list(user.roles),
    }


def enterprise_project(uow, *, account_id: str, project_id: str) -> dict[str, Any]:
    project = uow.session.get(EnterpriseProject, (account_id, project_id))
    if project is None:
        raise NotFound(f"enterprise project {project_id} not found")
    return {"id": project.id, "name": project.name, "status": project.status}
