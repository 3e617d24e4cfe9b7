"""iam-agency's use cases. Each takes a unit of work (``uow.accounts`` and
``uow.agencies`` are the repositories; ``emit``, ``commit``) and a clock, so it runs the
same under nameko, in the command line and in unit tests; the agency use cases also take
``AgencyDeps`` (settings, the cloud's IAM, the credential cache)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from iam_agency import domain, policies
from iam_agency.cloud import (
    CloudAgency,
    CloudError,
    IamCloud,
    IamSession,
    Keys,
    TemporaryCredentials,
)
from iam_agency.credentials import CredentialCache
from iam_agency.metrics import (
    AGENCY_AUTHORIZATIONS,
    AGENCY_CHECKS,
    AGENCY_CREDENTIALS,
    ENTERPRISE_PROJECTS,
)
from iam_agency.models import Account, Agency, ApiToken, CloudAccount, EnterpriseProject, User
from iam_agency.repository import EmailTaken, ProjectNameTaken
from iam_agency.settings import Settings
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    ValidationError,
)
from mercato.iampolicy import evaluate
from mercato.identity import ACCOUNT_TYPES, BUYER, RESELLER
from mercato.request_keys import RequestKey

_log = logging.getLogger(__name__)


def open_account(
    uow,
    clock: Clock,
    *,
    name: str,
    email: str,
    password: str,
    type: str,
    reseller_account_id: str | None = None,
    kept: RequestKey | None = None,
) -> dict[str, Any]:
    """Create an account with its first user and its ``default`` enterprise project;
    ``kept``, the request's key, is kept with it (``mercato.request_keys``)."""
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
        time_zone=domain.DEFAULT_TIME_ZONE,
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
        description="",
        type=domain.COMMERCIAL,
        status=domain.PROJECT_ENABLED,
        created_at=now,
        updated_at=now,
        revision=1,
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
    _emit_project(uow, CREATED, project)
    uow.request_keys.keep(kept, account.id, now)
    uow.commit()
    ENTERPRISE_PROJECTS.labels(CREATED).inc()
    return _account_answer(account, email)


def _account_answer(account: Account, email: str) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "email": email,
        "type": account.type,
        "time_zone": account.time_zone,
    }


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


def sign_up(
    uow,
    clock: Clock,
    *,
    name: str,
    email: str,
    password: str,
    type: str,
    request_key: str | None = None,
) -> dict[str, Any]:
    """Open an account (``open_account``). A sign-up has no caller yet, so its request
    key is kept under the email's digest: a retry of the same sign-up (``request_key``)
    answers the account it opened, not EMAIL_TAKEN. The password is no part of the
    key's fingerprint (nothing derived from it is kept beside its salted hash)."""
    email = domain.normalise_email(email)
    kept = RequestKey.of(
        request_key,
        account_id=hashlib.sha256(email.encode()).hexdigest(),
        operation="sign_up",
        arguments={"name": name, "email": email, "type": type},
    )
    first = uow.request_keys.first_result(kept)
    if first is not None:
        opened = uow.accounts.account(first)
        assert opened is not None
        return _account_answer(opened, email)
    return open_account(uow, clock, name=name, email=email, password=password, type=type, kept=kept)


def open_reseller_customer(
    uow,
    clock: Clock,
    *,
    reseller_account_id: str,
    name: str,
    email: str,
    password: str,
    request_key: str | None = None,
) -> dict[str, Any]:
    """A buyer account associated with a reseller, who pays for its orders. A retry of
    the same request (``request_key``) answers the customer it opened, not
    EMAIL_TAKEN. (The password is no part of the key's fingerprint: nothing derived
    from it is kept beside its salted hash.)"""
    reseller = uow.accounts.account(reseller_account_id)
    if reseller is None or reseller.type != RESELLER:
        raise NotFound("reseller account not found")
    email = domain.normalise_email(email)
    kept = RequestKey.of(
        request_key,
        account_id=reseller_account_id,
        operation="create_reseller_customer",
        arguments={"name": name, "email": email},
    )
    first = uow.request_keys.first_result(kept)
    if first is not None:
        opened = uow.accounts.account(first)
        assert opened is not None
        return {**_account_answer(opened, email), "reseller_account_id": reseller_account_id}
    customer = open_account(
        uow,
        clock,
        name=name,
        email=email,
        password=password,
        type=BUYER,
        reseller_account_id=reseller_account_id,
        kept=kept,
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
        "account": _account_summary(account),
        "user": {"id": user.id, "email": user.email},
        "roles": list(user.roles),
    }


def _account_summary(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "type": account.type,
        "time_zone": account.time_zone or domain.DEFAULT_TIME_ZONE,
    }


def change_time_zone(uow, clock: Clock, *, account_id: str, time_zone: str) -> dict[str, Any]:
    """Set the account's time zone (an IANA name, checked by the contract) and announce
    it (``iam_agency.account.time_zone_changed``, in the same transaction); the same
    zone again changes nothing and announces nothing. Answers the account."""
    account = uow.accounts.lock_account(account_id)
    if account is None:
        raise NotFound("account not found")
    if not domain.time_zone_changes(account.time_zone, time_zone):
        answer = _account_summary(account)
        uow.rollback()
        return answer
    account.time_zone = time_zone
    uow.emit(
        "iam_agency.account.time_zone_changed",
        subject=account.id,
        account_id=account.id,
        data={"account_id": account.id, "time_zone": time_zone, "changed_at": clock.now()},
    )
    answer = _account_summary(account)
    uow.commit()
    return answer


# -- enterprise projects (guide section 2.3) -----------------------------------------
# Each change is written with its event (``iam_agency.enterprise_project.<change>``,
# the project after it with its revision) in one transaction: orders and billing keep
# copies of the projects from these events.

CREATED, DISABLED, ENABLED = "created", "disabled", "enabled"


def _project_view(project: EnterpriseProject) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description or "",
        "type": project.type,
        "status": project.status,
        "revision": project.revision,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


def _emit_project(uow, change: str, project: EnterpriseProject) -> None:
    uow.emit(
        f"iam_agency.enterprise_project.{change}",
        subject=project.account_id,
        account_id=project.account_id,
        data={
            "account_id": project.account_id,
            "enterprise_project_id": project.id,
            "name": project.name,
            "description": project.description or "",
            "type": project.type,
            "status": project.status,
            "revision": project.revision,
            "updated_at": project.updated_at,
        },
    )


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"an enterprise project named {name!r} exists already",
        fields={"name": ["already used by another enterprise project of the account"]},
    )


def enterprise_project(uow, *, account_id: str, project_id: str) -> dict[str, Any]:
    project = uow.accounts.enterprise_project(account_id, project_id)
    if project is None:
        raise NotFound(f"enterprise project {project_id} not found")
    return _project_view(project)


def create_enterprise_project(
    uow,
    clock: Clock,
    *,
    account_id: str,
    name: str,
    description: str,
    type: str,
    request_key: str | None = None,
) -> dict[str, Any]:
    """A new enterprise project of the account, enabled (``eps_...``), announced
    (``created``). Its name is new in the account whatever its case (409 naming
    ``name``); a retry of the same request (``request_key``) answers the project it
    created. The name is kept without the whitespace around it."""
    name = name.strip()
    kept = RequestKey.of(
        request_key,
        account_id=account_id,
        operation="create_enterprise_project",
        arguments={"name": name, "description": description, "type": type},
    )
    first = uow.request_keys.first_result(kept)
    if first is not None:
        created = uow.accounts.enterprise_project(account_id, first)
        assert created is not None
        return _project_view(created)
    if uow.accounts.account(account_id) is None:
        raise NotFound("account not found")
    if uow.accounts.project_name_taken(account_id, name):
        raise _name_taken(name)
    now = clock.now()
    project = EnterpriseProject(
        account_id=account_id,
        id=new_id(domain.PROJECT_ID_PREFIX),
        name=name,
        description=description,
        type=type,
        status=domain.PROJECT_ENABLED,
        created_at=now,
        updated_at=now,
        revision=1,
    )
    try:
        uow.accounts.add_enterprise_project(project)
    except ProjectNameTaken:  # created at the same moment by another request
        uow.rollback()
        raise _name_taken(name) from None
    _emit_project(uow, CREATED, project)
    uow.request_keys.keep(kept, project.id, now)
    answer = _project_view(project)
    uow.commit()
    ENTERPRISE_PROJECTS.labels(CREATED).inc()
    return answer


def list_enterprise_projects(
    uow, *, account_id: str, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    """A page of the account's projects: ``default`` first, then the oldest first."""
    rows, total = uow.accounts.enterprise_projects(
        account_id, status=status, offset=(page - 1) * page_size, limit=page_size
    )
    return {
        "items": [_project_view(row) for row in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
    }


def _move_project(
    uow, clock: Clock, move: str, change: str, *, account_id: str, project_id: str
) -> dict[str, Any]:
    project = uow.accounts.lock_enterprise_project(account_id, project_id)
    if project is None:
        raise NotFound(f"enterprise project {project_id} not found")
    status = domain.project_status_after(move, project.id, project.status)
    if status is None:  # already so: answered unchanged, nothing announced
        answer = _project_view(project)
        uow.rollback()
        return answer
    project.status = status
    project.updated_at = clock.now()
    project.revision = (project.revision or 0) + 1
    _emit_project(uow, change, project)
    answer = _project_view(project)
    uow.commit()
    ENTERPRISE_PROJECTS.labels(change).inc()
    return answer


def disable_enterprise_project(
    uow, clock: Clock, *, account_id: str, project_id: str
) -> dict[str, Any]:
    """Disable one of the account's projects: no order may name it from now on.
    ``default`` may not be disabled (422 DEFAULT_PROJECT_REQUIRED); a disabled one is
    answered as it is."""
    return _move_project(
        uow, clock, "disable", DISABLED, account_id=account_id, project_id=project_id
    )


def enable_enterprise_project(
    uow, clock: Clock, *, account_id: str, project_id: str
) -> dict[str, Any]:
    """Enable a disabled project again; an enabled one is answered as it is."""
    return _move_project(
        uow, clock, "enable", ENABLED, account_id=account_id, project_id=project_id
    )


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


# -- cloud accounts and agencies ----------------------------------------------------------
# The agency use cases never hold a database transaction open across a cloud call: they
# read what they need, end the read, call the cloud, and then lock the rows and write
# what the cloud answered (checking that nobody changed them meanwhile).

MKP_AGENCY, RFS_AGENCY = policies.MKP_AGENCY, policies.RFS_AGENCY
CHECK_BATCH = 10


@dataclass(frozen=True)
class AgencyDeps:
    """What the agency use cases need beside the unit of work and the clock."""

    settings: Settings
    iam: IamCloud
    cache: CredentialCache


@dataclass(frozen=True)
class _Seen:
    """An agency row as read before a cloud call."""

    name: str
    status: str
    policy_version: int | None
    agency_id: str | None
    role_id: str | None
    revision: int


@dataclass(frozen=True)
class _Linked:
    account_id: str
    provider: str
    region: str
    domain_id: str
    project_id: str
    agencies: dict[str, _Seen]

    @property
    def revision(self) -> tuple[int, ...]:
        return tuple(self.agencies[n].revision if n in self.agencies else -1 for n in AGENCY_NAMES)


AGENCY_NAMES = policies.AGENCY_NAMES


def _read_linked(uow, account_id: str) -> _Linked | None:
    """The account's cloud account and agencies as they are now; the read ends here."""
    cloud_account = uow.agencies.cloud_account(account_id)
    if cloud_account is None:
        uow.rollback()
        return None
    seen = {
        name: _Seen(
            name, row.status, row.policy_version, row.agency_id, row.role_id, row.revision or 0
        )
        for name, row in uow.agencies.agencies(account_id).items()
    }
    linked = _Linked(
        account_id,
        cloud_account.provider,
        cloud_account.region,
        cloud_account.domain_id,
        cloud_account.project_id,
        seen,
    )
    uow.rollback()
    return linked


def _statuses(agencies: dict[str, _Seen], settings: Settings) -> dict[str, str]:
    statuses = {}
    for name in AGENCY_NAMES:
        row = agencies.get(name)
        stored = row.status if row else domain.NOT_AUTHORIZED
        statuses[name] = domain.effective_status(
            stored, row.policy_version if row else None, settings.policy_version
        )
    return statuses


def _delegate(definition: policies.AgencyDefinition, settings: Settings) -> str:
    if definition.delegate == policies.MERCATO_DELEGATE:
        return settings.cloud.domain_name or settings.cloud.domain_id or "mercato"
    return definition.delegate


def _cloud_account_view(cloud_account: CloudAccount) -> dict[str, Any]:
    return {
        "provider": cloud_account.provider,
        "region": cloud_account.region,
        "domain_id": cloud_account.domain_id,
        "project_id": cloud_account.project_id,
        "linked_at": cloud_account.linked_at,
        "updated_at": cloud_account.updated_at,
    }


def link_cloud_account(
    uow, clock: Clock, deps: AgencyDeps, *, account_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Link (or change) the buyer's cloud account. Another domain or project makes the
    agencies authorised in the old one unusable here: they are revoked."""
    if uow.accounts.account(account_id) is None:
        raise NotFound("account not found")
    now = clock.now()
    cloud_account = uow.agencies.lock_cloud_account(account_id)
    if cloud_account is None:
        cloud_account = CloudAccount(
            account_id=account_id,
            deprecated=[],
            linked_at=now,
            check_due_at=None,
            check_claimed_until=None,
            **request,
        )
        cloud_account.updated_at = now
        uow.agencies.add_cloud_account(cloud_account)
    else:
        moved = (cloud_account.domain_id, cloud_account.project_id) != (
            request["domain_id"],
            request["project_id"],
        )
        if moved:
            for agency in uow.agencies.lock_agencies(account_id).values():
                _revoke(uow, agency, now, reason="the cloud account was changed")
            cloud_account.deprecated = []
            cloud_account.check_due_at = None
            deps.cache.forget(account_id)
        for key, value in request.items():
            setattr(cloud_account, key, value)
        cloud_account.updated_at = now
    uow.commit()
    return _cloud_account_view(cloud_account)


def get_cloud_account(uow, *, account_id: str) -> dict[str, Any]:
    cloud_account = uow.agencies.cloud_account(account_id)
    if cloud_account is None:
        raise NotFound("no cloud account is linked")
    return _cloud_account_view(cloud_account)


def list_agencies(uow, deps: AgencyDeps, *, account_id: str) -> dict[str, Any]:
    """Both agencies as the buyer sees them, and the deprecated ones found."""
    settings = deps.settings
    cloud_account = uow.agencies.cloud_account(account_id)
    rows = uow.agencies.agencies(account_id) if cloud_account is not None else {}
    items = []
    for name, definition in policies.AGENCIES.items():
        row = rows.get(name)
        stored = row.status if row else domain.NOT_AUTHORIZED
        granted = row.policy_version if row and stored != domain.NOT_AUTHORIZED else None
        version = granted or settings.policy_version
        items.append(
            {
                "name": name,
                "delegate": _delegate(definition, settings),
                "policy": {
                    "name": definition.policy_name,
                    "version": version,
                    "document": definition.document(version),
                },
                "required_version": settings.policy_version,
                "status": domain.effective_status(stored, granted, settings.policy_version),
                "authorized_at": row.authorized_at if row and granted else None,
                "checked_at": row.checked_at if row and granted else None,
                "problems": list(row.problems or []) if row and granted else [],
            }
        )
    deprecated = list(cloud_account.deprecated or []) if cloud_account is not None else []
    return {
        "items": items,
        "deprecated": [
            {"name": name, "advice": policies.DEPRECATED_AGENCIES[name]}
            for name in deprecated
            if name in policies.DEPRECATED_AGENCIES
        ],
    }


def _require_linked(uow, account_id: str) -> _Linked:
    linked = _read_linked(uow, account_id)
    if linked is None:
        raise Conflict(
            "link your cloud account first (PUT /v1/cloud-account)",
            code="CLOUD_ACCOUNT_NOT_LINKED",
        )
    return linked


def _trust(definition: policies.AgencyDefinition, settings: Settings) -> tuple[str | None, str]:
    """(trusted domain id or None, trusted domain name) of an agency."""
    if definition.delegate == policies.MERCATO_DELEGATE:
        return settings.cloud.domain_id or None, settings.cloud.domain_name
    return None, definition.delegate


def _trusts(agency: CloudAgency, definition: policies.AgencyDefinition, settings: Settings) -> bool:
    trust_id, trust_name = _trust(definition, settings)
    if agency.trust_domain_name:
        return agency.trust_domain_name == trust_name
    return trust_id is not None and agency.trust_domain_id == trust_id


def _authorize_in_cloud(
    session: IamSession, settings: Settings, project_id: str
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Create or update both agencies and their policies at the current version and
    grant them on the project: ``({name: (agency id, role id)}, deprecated names)``."""
    existing = {agency.name: agency for agency in session.list_agencies()}
    deprecated = sorted(name for name in existing if name in policies.DEPRECATED_AGENCIES)
    custom = {policy.name: policy for policy in session.list_custom_policies()}
    granted: dict[str, tuple[str, str]] = {}
    for name, definition in policies.AGENCIES.items():
        _trust_id, trust_name = _trust(definition, settings)
        agency = existing.get(name)
        if agency is None:
            try:
                agency = session.create_agency(
                    name,
                    trust_domain_id=None,
                    trust_domain_name=trust_name,
                    description=definition.description,
                )
            except CloudError as exc:
                if not exc.conflict:
                    raise
                # created meanwhile (another authorisation): use that one
                agency = {a.name: a for a in session.list_agencies()}[name]
        if not _trusts(agency, definition, settings):
            session.update_agency_trust(
                agency.id,
                trust_domain_id=None,
                trust_domain_name=trust_name,
                description=definition.description,
            )
        document = definition.document(settings.policy_version)
        policy = custom.get(definition.policy_name)
        if policy is None:
            try:
                policy = session.create_custom_policy(
                    definition.policy_name, definition.description, document
                )
            except CloudError as exc:
                if not exc.conflict:
                    raise
                # created meanwhile (another authorisation): bring that one up to date
                policy = {p.name: p for p in session.list_custom_policies()}[definition.policy_name]
        if domain.policy_differences(document, policy.document):
            session.update_custom_policy(
                policy.id, definition.policy_name, definition.description, document
            )
        session.grant(project_id, agency.id, policy.id)
        granted[name] = (agency.id, policy.id)
    return granted, deprecated


def authorize_agencies(
    uow,
    clock: Clock,
    deps: AgencyDeps,
    *,
    account_id: str,
    keys: Keys,
    request_key: str | None = None,
) -> dict[str, Any]:
    """With the buyer's keys (used for these calls only, never kept): both agencies and
    their policies at the current version, granted on the project. A retry of an
    authorisation that went through (same ``request_key``) answers the agencies
    without calling the cloud again (the secret is no part of the key's fingerprint)."""
    kept = RequestKey.of(
        request_key,
        account_id=account_id,
        operation="authorize_agencies",
        arguments={"access_key": keys.access_key},
    )
    if uow.request_keys.first_result(kept) is not None:
        return list_agencies(uow, deps, account_id=account_id)
    settings = deps.settings
    if not settings.cloud.domain_name:
        raise ServiceUnavailable(
            "Mercato's own cloud account is not configured (MERCATO_CLOUD_DOMAIN_NAME)"
        )
    linked = _require_linked(uow, account_id)
    try:
        with deps.iam.with_keys(keys, linked.domain_id) as session:
            granted, deprecated = _authorize_in_cloud(session, settings, linked.project_id)
    except CloudError as exc:
        AGENCY_AUTHORIZATIONS.labels("refused" if exc.refused else "error").inc()
        _log.info("authorising the agencies of %s failed: %s", account_id, exc.message)
        if exc.unauthenticated:
            raise ValidationError(
                "the cloud did not accept these keys",
                {"access_key": ["not accepted by the cloud account (check the key and secret)"]},
            ) from None
        if exc.forbidden:
            raise ValidationError(
                "the user of these keys may not manage IAM agencies and policies",
                {"access_key": ["belongs to a user that may not manage IAM"]},
            ) from None
        if exc.refused:
            raise BusinessRuleViolation(exc.message, code="CLOUD_REFUSED") from None
        raise ServiceUnavailable(exc.message) from None
    now = clock.now()
    cloud_account = uow.agencies.lock_cloud_account(account_id)
    if cloud_account is None or cloud_account.domain_id != linked.domain_id:
        raise Conflict("the cloud account was changed meanwhile: authorise again")
    rows = uow.agencies.lock_agencies(account_id)
    for name, (agency_id, role_id) in granted.items():
        definition = policies.AGENCIES[name]
        agency = rows.get(name)
        if agency is None:
            agency = Agency(
                account_id=account_id,
                name=name,
                status=domain.NOT_AUTHORIZED,
                policy_name=definition.policy_name,
                problems=[],
                revision=0,
            )
            uow.agencies.add_agency(agency)
        agency.status = domain.AGENCY.move("authorize", agency.status)
        agency.policy_name = definition.policy_name
        agency.policy_version = settings.policy_version
        agency.agency_id = agency_id
        agency.role_id = role_id
        agency.authorized_at = now
        agency.checked_at = now
        agency.problems = []
        agency.revision = (agency.revision or 0) + 1
        _emit_agency(uow, "iam_agency.agency.authorized", agency)
    cloud_account.deprecated = deprecated
    cloud_account.check_due_at = now + dt.timedelta(seconds=settings.check_seconds)
    cloud_account.updated_at = now
    uow.request_keys.keep(kept, account_id, now)
    uow.commit()
    deps.cache.forget(account_id)
    AGENCY_AUTHORIZATIONS.labels("authorized").inc()
    return list_agencies(uow, deps, account_id=account_id)


def _emit_agency(uow, event_type: str, agency: Agency) -> None:
    uow.emit(
        event_type,
        subject=agency.account_id,
        account_id=agency.account_id,
        data={
            "account_id": agency.account_id,
            "agency": agency.name,
            "policy_version": agency.policy_version,
            "problems": list(agency.problems or []),
        },
    )


def _revoke(uow, agency: Agency, now: dt.datetime, *, reason: str) -> None:
    if agency.status == domain.NOT_AUTHORIZED:
        return
    agency.status = domain.AGENCY.move("revoke", agency.status)
    agency.problems = []
    agency.checked_at = now
    agency.revision = (agency.revision or 0) + 1
    _emit_agency(uow, "iam_agency.agency.revoked", agency)
    _log.info("agency %s of %s revoked: %s", agency.name, agency.account_id, reason)


# -- checks ----------------------------------------------------------------------------------


def _inspect(
    session: IamSession, settings: Settings, linked: _Linked, names: list[str]
) -> tuple[dict[str, list[dict[str, str]]], list[str] | None, set[str]]:
    """What is wrong with each of ``names`` in the cloud, read under mkp_agency_trust;
    the deprecated agencies found (None: not read); and which agencies were checked
    (an older policy allows no IAM reads: then only that mkp_agency_trust could be
    assumed is known)."""
    assumed_only = {MKP_AGENCY} & set(names)
    mkp = linked.agencies[MKP_AGENCY]
    granted_mkp = policies.document(policies.DEPLOYMENT_POLICY, mkp.policy_version or 1)
    if not evaluate(granted_mkp, "iam:agencies:listAgencies").allowed:
        return {}, None, assumed_only
    findings: dict[str, list[dict[str, str]]] = {name: [] for name in names}
    try:
        agencies = session.list_agencies()
        by_name = {agency.name: agency for agency in agencies}
        roles_of = {
            agency.id: _granted_roles(session, linked.project_id, agency.id) for agency in agencies
        }
        for name in names:
            seen = linked.agencies[name]
            definition = policies.AGENCIES[name]
            problems = findings[name]
            agency = by_name.get(name)
            if agency is None:
                problems.append(
                    domain.problem(domain.AGENCY_MISSING, f"{name} no longer exists in the account")
                )
                continue
            if seen.agency_id and agency.id != seen.agency_id:
                problems.append(
                    domain.problem(
                        domain.AGENCY_REPLACED, f"{name} was deleted and created again by someone"
                    )
                )
            if not _trusts(agency, definition, settings):
                _id, trusted = _trust(definition, settings)
                now_trusts = agency.trust_domain_name or agency.trust_domain_id
                problems.append(
                    domain.problem(
                        domain.TRUST_CHANGED, f"{name} now trusts {now_trusts} instead of {trusted}"
                    )
                )
            problems.extend(_policy_problems(session, definition, seen))
            if seen.role_id and seen.role_id not in roles_of.get(agency.id, set()):
                problems.append(
                    domain.problem(
                        domain.POLICY_NOT_GRANTED,
                        f"{definition.policy_name} is no longer granted to {name}",
                    )
                )
        owners = {linked.agencies[name].role_id: name for name in names}
        for agency in agencies:
            for role_id in roles_of.get(agency.id, set()):
                owner = owners.get(role_id)
                if owner is not None and agency.name != owner:
                    policy_name = policies.AGENCIES[owner].policy_name
                    findings[owner].append(
                        domain.problem(
                            domain.POLICY_REUSED,
                            f"{policy_name} is also granted to agency {agency.name}",
                        )
                    )
    except CloudError as exc:
        if not exc.forbidden:
            raise
        findings.setdefault(MKP_AGENCY, []).append(
            domain.problem(
                domain.CHECK_REFUSED,
                f"the cloud refused {exc.call}, which the policy granted allows: the policy of "
                f"{MKP_AGENCY} was changed",
            )
        )
        return findings, None, {MKP_AGENCY}
    deprecated = sorted(name for name in by_name if name in policies.DEPRECATED_AGENCIES)
    return findings, deprecated, set(names)


def _granted_roles(session: IamSession, project_id: str, agency_id: str) -> set[str]:
    try:
        return session.granted_role_ids(project_id, agency_id)
    except CloudError as exc:
        if exc.not_found:
            return set()
        raise


def _policy_problems(
    session: IamSession, definition: policies.AgencyDefinition, seen: _Seen
) -> list[dict[str, str]]:
    if not seen.role_id:
        return []
    try:
        found = session.show_custom_policy(seen.role_id)
    except CloudError as exc:
        if not exc.not_found:
            raise
        return [domain.problem(domain.POLICY_MISSING, f"{definition.policy_name} no longer exists")]
    expected = definition.document(seen.policy_version or 1)
    differences = domain.policy_differences(expected, found.document)
    if not differences:
        return []
    return [
        domain.problem(
            domain.POLICY_CHANGED,
            f"{definition.policy_name} differs from version {seen.policy_version}: "
            + "; ".join(differences),
        )
    ]


def check_account(
    uow, clock: Clock, deps: AgencyDeps, *, account_id: str, release_claim: bool = False
) -> dict[str, str]:
    """Check the account's authorised agencies in the cloud now; the result by agency
    (``authorized``, ``broken`` or ``error``). An agency found deleted, changed or
    reused is broken from now on; an assume_role the cloud refuses breaks
    mkp_agency_trust. A cloud that does not answer changes nothing."""
    settings = deps.settings
    linked = _read_linked(uow, account_id)
    if linked is None:
        return {}
    names = [
        n
        for n in AGENCY_NAMES
        if n in linked.agencies and linked.agencies[n].status == domain.AUTHORIZED
    ]
    findings: dict[str, list[dict[str, str]]] = {}
    inspected: set[str] = set()
    deprecated: list[str] | None = None
    assumed: TemporaryCredentials | None = None
    error: CloudError | None = None
    if names:
        try:
            assumed = deps.iam.assume(MKP_AGENCY, linked.domain_id, settings.credentials_seconds)
        except CloudError as exc:
            if not exc.refused:
                error = exc
            else:  # nothing else can be checked without it
                inspected = {MKP_AGENCY} & set(names)
                findings[MKP_AGENCY] = [
                    domain.problem(
                        domain.ASSUME_FAILED,
                        f"Mercato could not assume {MKP_AGENCY}: {exc.message}",
                    )
                ]
        if assumed is not None and MKP_AGENCY in linked.agencies:
            try:
                with deps.iam.with_temporary(assumed, linked.domain_id) as session:
                    findings, deprecated, inspected = _inspect(session, settings, linked, names)
            except CloudError as exc:
                error = exc
    now = clock.now()
    results: dict[str, str] = {}
    cloud_account = uow.agencies.lock_cloud_account(account_id)
    rows = uow.agencies.lock_agencies(account_id)
    for name in names:
        if error is None and name not in inspected:
            continue
        agency = rows.get(name)
        if agency is None or agency.revision != linked.agencies[name].revision:
            continue  # authorised again or deleted meanwhile: this check is stale
        if error is not None:
            results[name] = "error"
            continue
        problems = findings.get(name) or []
        agency.checked_at = now
        if problems:
            agency.status = domain.AGENCY.move("break", agency.status)
            agency.problems = problems
            agency.revision = (agency.revision or 0) + 1
            _emit_agency(uow, "iam_agency.agency.broken", agency)
            results[name] = domain.BROKEN
        else:
            agency.problems = []
            results[name] = domain.AUTHORIZED
    if cloud_account is not None:
        if deprecated is not None:
            cloud_account.deprecated = deprecated
        # nothing authorised: nothing to check until the next authorisation
        due = now + dt.timedelta(seconds=settings.check_seconds) if names else None
        cloud_account.check_due_at = due
        if release_claim:
            cloud_account.check_claimed_until = None
    uow.commit()
    for result in results.values():
        AGENCY_CHECKS.labels(result).inc()
    if error is not None:
        _log.warning("checking the agencies of %s failed: %s", account_id, error.message)
    if any(result == domain.BROKEN for result in results.values()):
        deps.cache.forget(account_id)
        _log.info("agencies of %s found broken: %s", account_id, sorted(results))
    elif assumed is not None and not error and results.get(MKP_AGENCY) == domain.AUTHORIZED:
        # the credentials the check was made with serve the deployments that follow
        fresh = _read_linked(uow, account_id)
        if fresh is not None:
            _remember(deps, clock, account_id, fresh.revision, assumed)
    if error is not None and results:
        raise ServiceUnavailable(f"the agencies could not be checked: {error.message}")
    return results


def check_agencies(uow, clock: Clock, deps: AgencyDeps, *, account_id: str) -> dict[str, Any]:
    """The buyer's check now; answers the agencies as ``list_agencies`` does."""
    _require_linked(uow, account_id)
    check_account(uow, clock, deps, account_id=account_id)
    return list_agencies(uow, deps, account_id=account_id)


def claim_due_checks(uow, clock: Clock, deps: AgencyDeps, *, limit: int = CHECK_BATCH) -> list[str]:
    """Accounts whose scheduled check is due, held by this replica for the lease."""
    now = clock.now()
    lease = now + dt.timedelta(seconds=deps.settings.check_lease_seconds)
    claimed = uow.agencies.claim_due_checks(now, lease, limit)
    uow.commit()
    return claimed


def run_due_checks(uow, clock: Clock, deps: AgencyDeps) -> int:
    """One batch of scheduled checks; how many accounts were checked."""
    claimed = claim_due_checks(uow, clock, deps)
    for account_id in claimed:
        try:
            check_account(uow, clock, deps, account_id=account_id, release_claim=True)
        except ServiceUnavailable:
            pass  # counted and logged; the lease runs out and the next sweep tries again
    return len(claimed)


# -- deletion, simulation, readiness, credentials ------------------------------------------


def delete_agency(
    uow, clock: Clock, deps: AgencyDeps, *, account_id: str, name: str
) -> dict[str, Any]:
    """Cancel an agency's authorisation at once, then delete it in the cloud (best
    effort). Without mkp_agency_trust Mercato can use nothing in the account, so
    deleting it cancels both: the stack service's agency first, then itself."""
    if name not in policies.AGENCIES:
        raise NotFound(f"no agency {name}")
    names = [RFS_AGENCY, MKP_AGENCY] if name == MKP_AGENCY else [RFS_AGENCY]
    cloud_account = uow.agencies.lock_cloud_account(account_id)
    if cloud_account is None:
        raise NotFound("no cloud account is linked")
    domain_id = cloud_account.domain_id
    rows = uow.agencies.lock_agencies(account_id)
    now = clock.now()
    in_cloud = []
    for each in names:
        agency = rows.get(each)
        if agency is None:
            continue
        if agency.agency_id:
            in_cloud.append((each, agency.agency_id))
        _revoke(uow, agency, now, reason="deleted by the buyer")
        agency.agency_id = None
    uow.commit()
    deps.cache.forget(account_id)
    if in_cloud:
        _delete_in_cloud(deps, account_id, domain_id, in_cloud)
    return list_agencies(uow, deps, account_id=account_id)


def _delete_in_cloud(
    deps: AgencyDeps, account_id: str, domain_id: str, agencies: list[tuple[str, str]]
) -> None:
    try:
        assumed = deps.iam.assume(MKP_AGENCY, domain_id, deps.settings.credentials_seconds)
        with deps.iam.with_temporary(assumed, domain_id) as session:
            for name, agency_id in agencies:
                try:
                    session.delete_agency(agency_id)
                except CloudError as exc:
                    if not exc.not_found:
                        _log.warning("deleting %s of %s failed: %s", name, account_id, exc.message)
    except CloudError as exc:
        _log.warning(
            "the agencies of %s could not be deleted in the cloud: %s", account_id, exc.message
        )


def simulate_agency_action(
    uow, deps: AgencyDeps, *, account_id: str, agency: str, action: str
) -> dict[str, Any]:
    """The decision of the policy version granted to ``agency`` (the current version
    when not authorised) on ``action``."""
    definition = policies.AGENCIES.get(agency)
    if definition is None:
        raise NotFound(f"no agency {agency}")
    row = uow.agencies.agencies(account_id).get(agency)
    granted = row.policy_version if row and row.status != domain.NOT_AUTHORIZED else None
    version = granted or deps.settings.policy_version
    decision = evaluate(definition.document(version), action)
    return {
        "decision": decision.decision,
        "statement": decision.statement,
        "policy": {"name": definition.policy_name, "version": version},
    }


def deployment_readiness(uow, deps: AgencyDeps, *, account_id: str) -> dict[str, Any]:
    """May a deployment start in the account, by the agencies' state here (no cloud
    call)?"""
    if uow.agencies.cloud_account(account_id) is None:
        return {
            "ready": False,
            "error": domain.AGENCY_NOT_AUTHORIZED,
            "message": "no cloud account is linked: link it and authorise the agencies",
        }
    rows = uow.agencies.agencies(account_id)
    seen = {
        name: _Seen(name, row.status, row.policy_version, None, None, row.revision or 0)
        for name, row in rows.items()
    }
    return domain.readiness(_statuses(seen, deps.settings))


def _remember(
    deps: AgencyDeps,
    clock: Clock,
    account_id: str,
    revision: tuple[int, ...],
    credentials: TemporaryCredentials,
) -> None:
    # the lifetime asked for, from now by the service's clock (the cloud grants it)
    usable_until = clock.now() + dt.timedelta(
        seconds=deps.settings.credentials_seconds - deps.settings.credentials_margin_seconds
    )
    deps.cache.put(account_id, revision, credentials, usable_until)


def agency_credentials(
    uow, clock: Clock, deps: AgencyDeps, *, account_id: str, check: bool
) -> dict[str, Any]:
    """Temporary credentials of the account's mkp_agency_trust for a deployment, with
    the policy granted to it; ``check`` runs the cloud check first. Refused with a
    Conflict naming why (AGENCY_NOT_AUTHORIZED, AGENCY_BROKEN,
    AGENCY_REAUTHORIZATION_REQUIRED)."""
    settings = deps.settings
    if check:
        check_account(uow, clock, deps, account_id=account_id)
    linked = _read_linked(uow, account_id)
    if linked is None:
        raise Conflict(
            "no cloud account is linked: link it and authorise the agencies",
            code=domain.AGENCY_NOT_AUTHORIZED,
        )
    refusal = domain.credentials_refusal(_statuses(linked.agencies, settings))
    if refusal is not None:
        code, message = refusal
        raise Conflict(message, code=code)
    credentials = deps.cache.get(account_id, linked.revision, clock.now())
    if credentials is not None:
        AGENCY_CREDENTIALS.labels("cached").inc()
    else:
        try:
            credentials = deps.iam.assume(
                MKP_AGENCY, linked.domain_id, settings.credentials_seconds
            )
        except CloudError as exc:
            if not exc.refused:
                raise ServiceUnavailable(exc.message) from None
            _break_on_assume(uow, clock, deps, linked, exc)
            raise Conflict(
                f"{MKP_AGENCY} is broken: {exc.message}", code=domain.AGENCY_BROKEN
            ) from None
        _remember(deps, clock, account_id, linked.revision, credentials)
        AGENCY_CREDENTIALS.labels("assumed").inc()
    mkp = linked.agencies[MKP_AGENCY]
    return {
        "provider": linked.provider,
        "region": linked.region,
        "domain_id": linked.domain_id,
        "project_id": linked.project_id,
        "access_key": credentials.keys.access_key,
        "secret_key": credentials.keys.secret_key,
        "security_token": credentials.keys.security_token,
        "expires_at": credentials.expires_at,
        "policy": policies.document(policies.DEPLOYMENT_POLICY, mkp.policy_version or 1),
    }


def _break_on_assume(uow, clock: Clock, deps: AgencyDeps, linked: _Linked, exc: CloudError) -> None:
    rows = uow.agencies.lock_agencies(linked.account_id)
    agency = rows.get(MKP_AGENCY)
    if (
        agency is not None
        and agency.status == domain.AUTHORIZED
        and agency.revision == linked.agencies[MKP_AGENCY].revision
    ):
        agency.status = domain.AGENCY.move("break", agency.status)
        agency.problems = [
            domain.problem(
                domain.ASSUME_FAILED, f"Mercato could not assume {MKP_AGENCY}: {exc.message}"
            )
        ]
        agency.checked_at = clock.now()
        agency.revision = (agency.revision or 0) + 1
        _emit_agency(uow, "iam_agency.agency.broken", agency)
        AGENCY_CHECKS.labels(domain.BROKEN).inc()
    uow.commit()
    deps.cache.forget(linked.account_id)
