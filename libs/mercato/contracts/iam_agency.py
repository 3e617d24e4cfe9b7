"""iam-agency's contracts: the events it publishes, and what its RPCs accept and answer
(the public API's accounts and sign-in bodies are these very schemas)."""

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, post_load, validate, validates, validates_schema

from mercato.contracts.common import ID_RULE
from mercato.contracts.registry import register
from mercato.identity import ACCOUNT_TYPES, BUYER, RESELLER, SELLER
from mercato.validation import AnswerSchema, PageSchema, StrictSchema, page_of


class AccountCreatedV1(StrictSchema):
    account_id = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(ACCOUNT_TYPES))
    reseller_account_id = fields.String(required=True, allow_none=True)


register(
    "iam_agency.account.created",
    1,
    AccountCreatedV1,
    summary="A marketplace account was opened (sign-up, a reseller's customer, or an "
    "operator created on the command line).",
    subject="the new account's id",
    example_subject="acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
    example={
        "account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "name": "Northwind Traders",
        "type": "buyer",
        "reseller_account_id": None,
    },
)


# -- account time zone ----------------------------------------------------

TIME_ZONE_RULE_TEXT = "an IANA time zone such as Asia/Shanghai"
DEFAULT_TIME_ZONE = "UTC"
_TIME_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")


def is_time_zone(name: object) -> bool:
    """An IANA time zone name that ``zoneinfo`` knows (``Asia/Shanghai``, ``UTC``); a
    path, an empty or an overlong name is none."""
    if not isinstance(name, str) or len(name) > 64 or not _TIME_ZONE_NAME.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _time_zone_rule(name: str) -> None:
    if not is_time_zone(name):
        raise ValidationError(f"must be {TIME_ZONE_RULE_TEXT}")


class AccountTimeZoneChangedV1(StrictSchema):
    account_id = fields.String(required=True)
    time_zone = fields.String(required=True)  # an IANA name, e.g. Asia/Shanghai
    changed_at = fields.AwareDateTime(required=True)


register(
    "iam_agency.account.time_zone_changed",
    1,
    AccountTimeZoneChangedV1,
    summary="An account chose another time zone (``PATCH /v1/account``): its "
    "subscriptions' next renewal and next auto-renew time are reckoned in it (an expiry "
    "already set does not move). Orders keeps a copy; the newer ``changed_at`` wins.",
    subject="the account's id",
    example_subject="acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
    example={
        "account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "time_zone": "Asia/Shanghai",
        "changed_at": dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC),
    },
)


# -- RPC: accounts and sign-in --------------------------------------------------------

SIGN_UP_TYPES = (BUYER, SELLER, RESELLER)
PASSWORD_RULE = validate.Length(min=10, max=128, error="must be 10 to 128 characters")
EMAIL_RULE = validate.Length(max=254)


class NewUserRequest(StrictSchema):
    """An account's name and the email and password of its first user."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The account's display name.", "example": "Acme Ltd"},
    )
    email = fields.Email(
        required=True,
        validate=EMAIL_RULE,
        metadata={"description": "Sign-in email of the first user.", "example": "ops@acme.test"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=PASSWORD_RULE,
        metadata={"description": "10 to 128 characters.", "example": "correct horse battery"},
    )


class SignUpRequest(NewUserRequest):
    """Open an account and its first user (``sign_up``)."""

    type = fields.String(
        required=True,
        validate=validate.OneOf(SIGN_UP_TYPES),
        metadata={"description": "What the account does on the marketplace.", "example": BUYER},
    )


class ResellerCustomerRequest(NewUserRequest):
    """A reseller opens a buyer account whose orders it pays for
    (``create_reseller_customer``)."""


class SignInRequest(StrictSchema):
    """Exchange an email and password for a bearer token (``issue_token``)."""

    email = fields.Email(required=True, validate=EMAIL_RULE, metadata={"example": "ops@acme.test"})
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=128),
        metadata={"example": "correct horse battery"},
    )


class AccountResponse(AnswerSchema):
    id = fields.String(metadata={"example": "acc_3f0c8a8e9d5b4f7c9e2a1b0c4d6e8f00"})
    name = fields.String(metadata={"example": "Acme Ltd"})
    email = fields.String(metadata={"example": "ops@acme.test"})
    type = fields.String(validate=validate.OneOf(SIGN_UP_TYPES), metadata={"example": BUYER})
    time_zone = fields.String(
        metadata={"description": "The account's IANA time zone.", "example": "UTC"}
    )


class ResellerCustomerResponse(AccountResponse):
    """A buyer account associated with the reseller that opened it."""

    reseller_account_id = fields.String(
        allow_none=True,
        metadata={
            "description": "The reseller that pays for this buyer's orders.",
            "example": "acc_9d1e…",
        },
    )


class TokenResponse(AnswerSchema):
    token = fields.String(
        metadata={
            "description": "Send it as `Authorization: Bearer <token>`.",
            "example": "mkt_4bX2…",
        }
    )
    expires_at = fields.AwareDateTime(
        metadata={"description": "RFC 3339, UTC.", "example": "2026-11-28T03:00:00+00:00"}
    )


class AuthenticatedResponse(AnswerSchema):
    """Who a bearer token belongs to (``authenticate``, asked by the gateway on every
    request it has not cached): enough to build a ``mercato.identity.Identity``, and
    the token's expiry. The gateway loads it back with this schema."""

    account_id = fields.String(required=True)
    account_type = fields.String(required=True)
    account_name = fields.String()
    user_id = fields.String(required=True)
    email = fields.String()
    roles = fields.List(fields.String(), load_default=list)
    # set for a reseller's customer
    reseller_account_id = fields.String(allow_none=True, load_default=None)
    expires_at = fields.AwareDateTime(load_default=None)


class AccountSummary(AnswerSchema):
    id = fields.String()
    name = fields.String()
    type = fields.String(metadata={"description": "buyer, seller, reseller or operator"})
    time_zone = fields.String(
        metadata={
            "description": "The account's IANA time zone (UTC unless changed): "
            "subscriptions expire at 23:59:59 local time in it.",
            "example": "Asia/Shanghai",
        }
    )


class AccountTimeZoneRequest(StrictSchema):
    """Change the account's time zone (``change_time_zone``, ``PATCH /v1/account``)."""

    time_zone = fields.String(
        required=True,
        validate=_time_zone_rule,
        metadata={
            "description": TIME_ZONE_RULE_TEXT.capitalize() + ".",
            "example": "Asia/Shanghai",
        },
    )


class UserSummary(AnswerSchema):
    id = fields.String()
    email = fields.String()


class MeResponse(AnswerSchema):
    """Who the bearer token belongs to (``me``)."""

    account = fields.Nested(AccountSummary)
    user = fields.Nested(UserSummary)
    roles = fields.List(fields.String(), metadata={"example": [BUYER]})


# -- enterprise projects (guide section 2.3) -------------------------------------------

DEFAULT_PROJECT_ID = "default"
COMMERCIAL = "commercial"
TEST = "test"
PROJECT_TYPES = (COMMERCIAL, TEST)
ENABLED = "enabled"
DISABLED = "disabled"
PROJECT_STATUSES = (ENABLED, DISABLED)
PROJECT_NAME_MAX = 64
PROJECT_DESCRIPTION_MAX = 500


class _Trimmed(fields.String):
    """A string taken without the whitespace around it (its rules check it so)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class EnterpriseProjectRequest(StrictSchema):
    """A new enterprise project of the caller's account (``create_enterprise_project``,
    ``POST /v1/enterprise-projects``)."""

    name = _Trimmed(
        required=True,
        validate=validate.Length(
            min=1, max=PROJECT_NAME_MAX, error=f"must be 1 to {PROJECT_NAME_MAX} characters"
        ),
        metadata={
            "description": "Unique in the account, whatever the case; taken without "
            "the whitespace around it.",
            "example": "Marketing",
        },
    )

    @validates("name")
    def name_is_not_blank(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("must not be blank")

    description = fields.String(
        load_default="",
        validate=validate.Length(
            max=PROJECT_DESCRIPTION_MAX, error=f"at most {PROJECT_DESCRIPTION_MAX} characters"
        ),
        metadata={"example": "Campaign sites and their analytics"},
    )
    type = fields.String(
        load_default=COMMERCIAL,
        validate=validate.OneOf(PROJECT_TYPES),
        metadata={
            "description": "commercial (the default) or test; resources move only between "
            "projects of one type.",
            "example": COMMERCIAL,
        },
    )


class EnterpriseProjectsQuery(PageSchema):
    """The caller's enterprise projects (``list_enterprise_projects``): ``default``
    first, then the oldest first."""

    status = fields.String(
        validate=validate.OneOf(PROJECT_STATUSES),
        metadata={"description": "Only the projects in this status (enabled or disabled)."},
    )

    @post_load
    def every_status_unless_one_is_given(self, data, **kwargs):
        return {"status": None, **data}


class EnterpriseProjectResponse(AnswerSchema):
    """One of the caller's enterprise projects (also ``get_enterprise_project``: orders
    check the one an order names)."""

    id = fields.String(
        metadata={"description": "`default`, or `eps_...`", "example": "eps_0f3a9c2e"}
    )
    name = fields.String(metadata={"example": "Marketing"})
    description = fields.String(metadata={"example": "Campaign sites and their analytics"})
    type = fields.String(validate=validate.OneOf(PROJECT_TYPES), metadata={"example": COMMERCIAL})
    status = fields.String(validate=validate.OneOf(PROJECT_STATUSES), metadata={"example": ENABLED})
    revision = fields.Integer(
        metadata={"description": "Moves by one on every change.", "example": 1}
    )
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


EnterpriseProjectPage = page_of(EnterpriseProjectResponse, "EnterpriseProjectPage")


class EnterpriseProjectV1(StrictSchema):
    """An enterprise project as it is after the change announced; ``revision`` moves by
    one on every change, so a copy keeps the highest it has seen."""

    account_id = fields.String(required=True)
    enterprise_project_id = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(PROJECT_TYPES))
    status = fields.String(required=True, validate=validate.OneOf(PROJECT_STATUSES))
    revision = fields.Integer(required=True)
    updated_at = fields.AwareDateTime(required=True)


_PROJECT_ACCOUNT_EXAMPLE = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_PROJECT_EXAMPLE = {
    "account_id": _PROJECT_ACCOUNT_EXAMPLE,
    "enterprise_project_id": "eps_8b1d4f2a6c3e4d5f9a0b1c2d3e4f5a6b",
    "name": "Marketing",
    "description": "Campaign sites and their analytics",
    "type": COMMERCIAL,
    "status": ENABLED,
    "revision": 1,
    "updated_at": dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC),
}

register(
    "iam_agency.enterprise_project.created",
    1,
    EnterpriseProjectV1,
    summary="An account's enterprise project was created: its ``default`` when the account "
    "was opened (in the same transaction as ``iam_agency.account.created``), or one the "
    "buyer created. Orders and billing keep a copy; the higher ``revision`` wins.",
    subject="the account's id",
    example_subject=_PROJECT_ACCOUNT_EXAMPLE,
    example=_PROJECT_EXAMPLE,
)
register(
    "iam_agency.enterprise_project.disabled",
    1,
    EnterpriseProjectV1,
    summary="A buyer disabled an enterprise project: from now on no order may name it "
    "(``default`` is never disabled). Disabling a disabled project announces nothing.",
    subject="the account's id",
    example_subject=_PROJECT_ACCOUNT_EXAMPLE,
    example={**_PROJECT_EXAMPLE, "status": DISABLED, "revision": 2},
)
register(
    "iam_agency.enterprise_project.enabled",
    1,
    EnterpriseProjectV1,
    summary="A buyer enabled a disabled enterprise project again: orders may name it once "
    "more. Enabling an enabled project announces nothing.",
    subject="the account's id",
    example_subject=_PROJECT_ACCOUNT_EXAMPLE,
    example={**_PROJECT_EXAMPLE, "revision": 3},
)


# -- RPC: accounts for other services ----------------------------------------------------

MAX_ACCOUNT_CARDS = 100  # a page of orders names at most this many buyers


class AccountCardsRequest(StrictSchema):
    """Whom to name (``account_cards``): the accounts, and those of them whose email may
    be shown (a buyer that shared its contact with the order the caller shows)."""

    account_ids = fields.List(
        fields.String(validate=ID_RULE),
        required=True,
        validate=validate.Length(min=1, max=MAX_ACCOUNT_CARDS),
    )
    contact_account_ids = fields.List(
        fields.String(validate=ID_RULE),
        load_default=list,
        validate=validate.Length(max=MAX_ACCOUNT_CARDS),
    )

    @validates_schema
    def contacts_are_among_the_accounts(self, data, **kwargs):
        if not set(data.get("contact_account_ids", ())) <= set(data["account_ids"]):
            raise ValidationError("must be among account_ids", "contact_account_ids")


class AccountCardResponse(AnswerSchema):
    """An account as another party sees it: its name, and its email only when asked
    for among ``contact_account_ids`` (the email of its first user)."""

    account_id = fields.String()
    name = fields.String()
    email = fields.String()


class AccountCardsResponse(AnswerSchema):
    """The known accounts among those asked for, in the order asked; an unknown one is
    left out."""

    items = fields.List(fields.Nested(AccountCardResponse))


# -- cloud accounts and agencies (guide section 9) ----------------------------------------

AGENCY_NAMES = ("mkp_agency_trust", "mkp_rfs_agency_trust")
AGENCY_STATUSES = ("not_authorized", "authorized", "needs_reauthorization", "broken")
CLOUD_PROVIDERS = ("simulated", "huaweicloud")
CLOUD_ID_RULE = validate.Regexp(
    r"^[A-Za-z0-9_.-]{1,64}$", error="1 to 64 letters, digits, '_', '.' or '-'"
)
ACTION_RULE = validate.Regexp(
    r"^[A-Za-z0-9*?]{1,64}(:[A-Za-z0-9*?]{1,64}){1,2}$",
    error="an IAM action such as ecs:cloudServers:create",
)


class AgencyProblem(StrictSchema):
    """What a check found wrong with an agency."""

    code = fields.String(
        required=True,
        metadata={
            "description": "AGENCY_MISSING, AGENCY_REPLACED, TRUST_CHANGED, POLICY_MISSING, "
            "POLICY_CHANGED, POLICY_NOT_GRANTED, POLICY_REUSED, ASSUME_FAILED or CHECK_REFUSED",
            "example": "POLICY_CHANGED",
        },
    )
    message = fields.String(
        required=True,
        metadata={
            "example": "mkp_deployment_policy differs from version 2: lacks rf:stack:deleteStack"
        },
    )


class AgencyEventV1(StrictSchema):
    account_id = fields.String(required=True)
    agency = fields.String(required=True, validate=validate.OneOf(AGENCY_NAMES))
    policy_version = fields.Integer(required=True, allow_none=True)
    problems = fields.List(fields.Nested(AgencyProblem), required=True)


_ACCOUNT_EXAMPLE = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_AGENCY_EXAMPLE = {
    "account_id": _ACCOUNT_EXAMPLE,
    "agency": "mkp_agency_trust",
    "policy_version": 2,
    "problems": [],
}

register(
    "iam_agency.agency.authorized",
    1,
    AgencyEventV1,
    summary="A buyer authorised an agency: it exists in the buyer's cloud account with "
    "the policy version named, granted on the project (one event per agency).",
    subject="the account's id",
    example_subject=_ACCOUNT_EXAMPLE,
    example=_AGENCY_EXAMPLE,
)
register(
    "iam_agency.agency.revoked",
    1,
    AgencyEventV1,
    summary="An agency's authorisation was cancelled (the buyer deleted it, or linked "
    "another cloud account): from now on no deployment may use it.",
    subject="the account's id",
    example_subject=_ACCOUNT_EXAMPLE,
    example=_AGENCY_EXAMPLE,
)
register(
    "iam_agency.agency.broken",
    1,
    AgencyEventV1,
    summary="A check found an authorised agency deleted, changed or its policy reused in "
    "the buyer's cloud account (``problems`` says what); it may not be used until the "
    "buyer authorises the agencies again.",
    subject="the account's id",
    example_subject=_ACCOUNT_EXAMPLE,
    example={
        **_AGENCY_EXAMPLE,
        "problems": [
            {
                "code": "POLICY_REUSED",
                "message": "mkp_deployment_policy is also granted to agency ops_admin",
            }
        ],
    },
)


class CloudAccountRequest(StrictSchema):
    """The buyer's account at the cloud (``link_cloud_account``, ``PUT /v1/cloud-account``)."""

    provider = fields.String(
        load_default="simulated",
        validate=validate.OneOf(CLOUD_PROVIDERS),
        metadata={"description": "simulated (the default) or huaweicloud", "example": "simulated"},
    )
    region = fields.String(
        required=True, validate=CLOUD_ID_RULE, metadata={"example": "cn-north-4"}
    )
    domain_id = fields.String(
        required=True,
        validate=CLOUD_ID_RULE,
        metadata={"description": "The cloud account's id.", "example": "d0c1a2b3c4d5"},
    )
    project_id = fields.String(
        required=True,
        validate=CLOUD_ID_RULE,
        metadata={"description": "The project of the region.", "example": "p0a1b2c3d4e5"},
    )


class CloudAccountResponse(AnswerSchema):
    provider = fields.String()
    region = fields.String()
    domain_id = fields.String()
    project_id = fields.String()
    linked_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class AgencyPolicyView(AnswerSchema):
    name = fields.String(metadata={"example": "mkp_deployment_policy"})
    version = fields.Integer(metadata={"example": 2})
    document = fields.Dict(metadata={"description": "The IAM policy 1.1 document of that version."})


class AgencyView(AnswerSchema):
    """An agency as the buyer sees it; ``policy`` is the version granted, or the one to
    grant when not authorised."""

    name = fields.String(validate=validate.OneOf(AGENCY_NAMES))
    delegate = fields.String(
        metadata={
            "description": "Who the agency trusts: Mercato's cloud account, or the stack "
            "service (op_svc_rfs)",
            "example": "op_svc_rfs",
        }
    )
    policy = fields.Nested(AgencyPolicyView)
    required_version = fields.Integer(
        metadata={"description": "The policy version Mercato now asks for.", "example": 2}
    )
    status = fields.String(validate=validate.OneOf(AGENCY_STATUSES))
    authorized_at = fields.AwareDateTime(allow_none=True)
    checked_at = fields.AwareDateTime(allow_none=True)
    problems = fields.List(fields.Nested(AgencyProblem))


class DeprecatedAgency(AnswerSchema):
    name = fields.String(metadata={"example": "mkp_admin_trust"})
    advice = fields.String()


class AgenciesResponse(AnswerSchema):
    """Both agencies (``list_agencies`` and what authorise, check and delete answer)."""

    items = fields.List(fields.Nested(AgencyView))
    deprecated = fields.List(fields.Nested(DeprecatedAgency))


class AgencyAuthorizationRequest(StrictSchema):
    """Keys of a user of the buyer's cloud account allowed to manage IAM: used for the
    authorisation's calls only, never stored nor logged."""

    access_key = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=128),
        metadata={"example": "AKIDEXAMPLE"},
    )
    secret_key = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"example": "secret-example"},
    )


class AgencySimulationRequest(StrictSchema):
    agency = fields.String(required=True, validate=validate.OneOf(AGENCY_NAMES))
    action = fields.String(
        required=True, validate=ACTION_RULE, metadata={"example": "rf:stack:deleteStack"}
    )


class AgencySimulationResponse(AnswerSchema):
    decision = fields.String(validate=validate.OneOf(("allow", "deny")))
    statement = fields.Dict(
        allow_none=True,
        metadata={"description": "The statement that decided (null: none matched)."},
    )
    policy = fields.Dict(metadata={"example": {"name": "mkp_deployment_policy", "version": 2}})


class DeploymentReadinessResponse(AnswerSchema):
    """Whether a deployment may start in the account (``deployment_readiness``, internal)."""

    ready = fields.Boolean()
    error = fields.String(
        allow_none=True,
        validate=validate.OneOf(("AGENCY_NOT_AUTHORIZED", "AGENCY_REAUTHORIZATION_REQUIRED")),
    )
    message = fields.String()


class AgencyCredentialsResponse(AnswerSchema):
    """Temporary credentials of the account's mkp_agency_trust and the policy granted to
    it (``agency_credentials``, internal: provisioning only)."""

    provider = fields.String()
    region = fields.String()
    domain_id = fields.String()
    project_id = fields.String()
    access_key = fields.String()
    secret_key = fields.String()
    security_token = fields.String()
    expires_at = fields.AwareDateTime()
    policy = fields.Dict()
