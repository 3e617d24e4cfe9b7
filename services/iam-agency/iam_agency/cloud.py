"""The cloud's IAM, through the cloud's own SDK (``huaweicloudsdkiam`` v3): the calls
iam-agency makes and nothing else.

Three kinds of caller:

- the buyer's own keys (``IamCloud.with_keys``), only while the buyer authorises the
  agencies: ``GlobalCredentials`` in the buyer's domain; never stored;
- Mercato's own cloud account (``IamCloud.assume``), which asks IAM for temporary
  credentials of ``mkp_agency_trust`` in the buyer's domain (the agency trusts it);
- those temporary credentials (``IamCloud.with_temporary``), which check and delete the
  agencies as far as the granted policy allows.

The SDK's errors become ``CloudError``s here. A key, a secret or a security token never
appears in an error's message: the cloud's own message is scrubbed of the keys the call
used before it is kept. The SDK's loggers do not propagate to the service's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ConnectionException,
    RequestTimeoutException,
    SdkException,
    ServiceResponseException,
)
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.utils.http_utils import sanitize_for_serialization
from huaweicloudsdkiam.v3 import (
    AgencyAuth,
    AgencyAuthIdentity,
    AgencyPolicy,
    AgencyPolicyRoleOption,
    AgencyPolicyStatement,
    AssociateAgencyWithProjectPermissionRequest,
    CreateAgencyCustomPolicyRequest,
    CreateAgencyCustomPolicyRequestBody,
    CreateAgencyOption,
    CreateAgencyRequest,
    CreateAgencyRequestBody,
    CreateTemporaryAccessKeyByAgencyRequest,
    CreateTemporaryAccessKeyByAgencyRequestBody,
    DeleteAgencyRequest,
    IamClient,
    IdentityAssumerole,
    ListAgenciesRequest,
    ListCustomPoliciesRequest,
    ListProjectPermissionsForAgencyRequest,
    ShowAgencyRequest,
    ShowCustomPolicyRequest,
    UpdateAgencyCustomPolicyRequest,
    UpdateAgencyCustomPolicyRequestBody,
    UpdateAgencyOption,
    UpdateAgencyRequest,
    UpdateAgencyRequestBody,
)

# an agency that never expires (the cloud's ``duration``)
FOREVER = "FOREVER"
# a custom policy of an agency, for global and project services (the cloud's role type)
AGENCY_POLICY_TYPE = "AX"
PAGE_SIZE = 100
HTTP_UNAUTHORIZED, HTTP_FORBIDDEN, HTTP_NOT_FOUND, HTTP_CONFLICT = 401, 403, 404, 409
HTTP_CLIENT_ERROR, HTTP_SERVER_ERROR = 400, 500


class CloudError(Exception):
    """A cloud call failed. ``status`` is the HTTP status (None: no answer), ``code``
    the cloud's error code; the message names the call and never a key."""

    def __init__(
        self, message: str, *, call: str, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.call = call
        self.status = status
        self.code = code

    @property
    def refused(self) -> bool:
        """The cloud answered no (4xx): the request, keys or permissions are at fault."""
        return self.status is not None and HTTP_CLIENT_ERROR <= self.status < HTTP_SERVER_ERROR

    @property
    def unauthenticated(self) -> bool:
        return self.status == HTTP_UNAUTHORIZED

    @property
    def forbidden(self) -> bool:
        return self.status == HTTP_FORBIDDEN

    @property
    def not_found(self) -> bool:
        return self.status == HTTP_NOT_FOUND

    @property
    def conflict(self) -> bool:
        return self.status == HTTP_CONFLICT


@dataclass(frozen=True)
class Keys:
    """An access key pair (and a security token, for temporary credentials)."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_key, self.secret_key, self.security_token) if s)


@dataclass(frozen=True)
class TemporaryCredentials:
    keys: Keys
    expires_at: dt.datetime


@dataclass(frozen=True)
class CloudAgency:
    id: str
    name: str
    trust_domain_id: str | None
    trust_domain_name: str | None


@dataclass(frozen=True)
class CloudPolicy:
    """A custom policy (a role of type AX): its id, name and document."""

    id: str
    name: str
    document: dict[str, Any]


@dataclass(frozen=True)
class CloudSettings:
    endpoint: str
    region: str
    # Mercato's own cloud account: the delegate of mkp_agency_trust
    domain_id: str
    domain_name: str
    keys: Keys | None
    timeout_seconds: float = 30.0


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def _translated(call: str, secrets: tuple[str, ...]) -> Iterator[None]:
    """The SDK's exceptions as ``CloudError``, named by ``call``, scrubbed of keys."""
    try:
        yield
    except ServiceResponseException as exc:
        kind = "refused" if isinstance(exc, ClientRequestException) else "failed"
        detail = _scrub(f"{exc.error_code or exc.status_code}: {exc.error_msg}", secrets)
        raise CloudError(
            f"the cloud {kind} {call} ({detail})",
            call=call,
            status=exc.status_code,
            code=exc.error_code,
        ) from None
    except (ConnectionException, RequestTimeoutException) as exc:
        raise CloudError(
            f"the cloud did not answer {call} ({type(exc).__name__})", call=call
        ) from None
    except SdkException as exc:
        raise CloudError(
            f"the cloud call {call} failed ({type(exc).__name__}: "
            f"{_scrub(str(exc.error_msg), secrets)})",
            call=call,
        ) from None


def _plain(model: Any) -> Any:
    """An SDK model as the JSON the cloud sent (``Version``, ``Statement``…)."""
    return sanitize_for_serialization(model)


class IamSession:
    """IAM calls in one domain under one set of keys. Use it in a ``with`` block: its
    HTTP session is closed at the end."""

    def __init__(self, settings: CloudSettings, keys: Keys, domain_id: str) -> None:
        credentials = GlobalCredentials(keys.access_key, keys.secret_key, domain_id)
        if keys.security_token:
            credentials = credentials.with_security_token(keys.security_token)
        config = HttpConfig.get_default_config()
        config.timeout = (min(10.0, settings.timeout_seconds), settings.timeout_seconds)
        self.domain_id = domain_id
        self._secrets = keys.secrets()
        with _translated("IAM client", self._secrets):
            self._client = (
                IamClient.new_builder()
                .with_http_config(config)
                .with_credentials(credentials)
                .with_endpoints([settings.endpoint])
                .build()
            )

    def __enter__(self) -> IamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.get_http_client().close()

    def _call(self, call: str, method: str, request: Any) -> Any:
        with _translated(call, self._secrets):
            return getattr(self._client, method)(request)

    # -- agencies ------------------------------------------------------------------------

    def list_agencies(self) -> list[CloudAgency]:
        response = self._call(
            "ListAgencies", "list_agencies", ListAgenciesRequest(domain_id=self.domain_id)
        )
        return [_agency(item) for item in response.agencies or []]

    def show_agency(self, agency_id: str) -> CloudAgency:
        response = self._call("ShowAgency", "show_agency", ShowAgencyRequest(agency_id=agency_id))
        return _agency(response.agency)

    def create_agency(
        self,
        name: str,
        *,
        trust_domain_id: str | None,
        trust_domain_name: str | None,
        description: str,
    ) -> CloudAgency:
        option = CreateAgencyOption(
            name=name,
            domain_id=self.domain_id,
            trust_domain_id=trust_domain_id,
            trust_domain_name=None if trust_domain_id else trust_domain_name,
            description=description,
            duration=FOREVER,
        )
        response = self._call(
            "CreateAgency",
            "create_agency",
            CreateAgencyRequest(body=CreateAgencyRequestBody(agency=option)),
        )
        created = response.agency
        return CloudAgency(
            id=created.id,
            name=created.name,
            trust_domain_id=created.trust_domain_id,
            trust_domain_name=trust_domain_name,
        )

    def update_agency_trust(
        self,
        agency_id: str,
        *,
        trust_domain_id: str | None,
        trust_domain_name: str | None,
        description: str,
    ) -> None:
        option = UpdateAgencyOption(
            trust_domain_id=trust_domain_id,
            trust_domain_name=None if trust_domain_id else trust_domain_name,
            description=description,
            duration=FOREVER,
        )
        self._call(
            "UpdateAgency",
            "update_agency",
            UpdateAgencyRequest(agency_id=agency_id, body=UpdateAgencyRequestBody(agency=option)),
        )

    def delete_agency(self, agency_id: str) -> None:
        self._call("DeleteAgency", "delete_agency", DeleteAgencyRequest(agency_id=agency_id))

    # -- custom policies -------------------------------------------------------------------

    def list_custom_policies(self) -> list[CloudPolicy]:
        policies: list[CloudPolicy] = []
        page = 1
        while True:
            response = self._call(
                "ListCustomPolicies",
                "list_custom_policies",
                ListCustomPoliciesRequest(page=page, per_page=PAGE_SIZE),
            )
            roles = response.roles or []
            policies.extend(_policy(role) for role in roles)
            total = response.total_number or 0
            if len(roles) < PAGE_SIZE or len(policies) >= total:
                return policies
            page += 1

    def show_custom_policy(self, role_id: str) -> CloudPolicy:
        response = self._call(
            "ShowCustomPolicy", "show_custom_policy", ShowCustomPolicyRequest(role_id=role_id)
        )
        return _policy(response.role)

    def create_custom_policy(
        self, name: str, description: str, document: dict[str, Any]
    ) -> CloudPolicy:
        body = CreateAgencyCustomPolicyRequestBody(role=_role_option(name, description, document))
        response = self._call(
            "CreateAgencyCustomPolicy",
            "create_agency_custom_policy",
            CreateAgencyCustomPolicyRequest(body=body),
        )
        return _policy(response.role)

    def update_custom_policy(
        self, role_id: str, name: str, description: str, document: dict[str, Any]
    ) -> None:
        body = UpdateAgencyCustomPolicyRequestBody(role=_role_option(name, description, document))
        self._call(
            "UpdateAgencyCustomPolicy",
            "update_agency_custom_policy",
            UpdateAgencyCustomPolicyRequest(role_id=role_id, body=body),
        )

    # -- grants ------------------------------------------------------------------------------

    def grant(self, project_id: str, agency_id: str, role_id: str) -> None:
        self._call(
            "UpdateAgencyProjectPermission",
            "associate_agency_with_project_permission",
            AssociateAgencyWithProjectPermissionRequest(
                project_id=project_id, agency_id=agency_id, role_id=role_id
            ),
        )

    def granted_role_ids(self, project_id: str, agency_id: str) -> set[str]:
        response = self._call(
            "ListProjectPermissionsForAgency",
            "list_project_permissions_for_agency",
            ListProjectPermissionsForAgencyRequest(project_id=project_id, agency_id=agency_id),
        )
        return {role.id for role in response.roles or []}


def _agency(item: Any) -> CloudAgency:
    return CloudAgency(
        id=item.id,
        name=item.name,
        trust_domain_id=getattr(item, "trust_domain_id", None),
        trust_domain_name=getattr(item, "trust_domain_name", None),
    )


def _policy(role: Any) -> CloudPolicy:
    document = _plain(role.policy) if role.policy is not None else {}
    return CloudPolicy(id=role.id, name=role.display_name or role.name, document=document)


def _role_option(name: str, description: str, document: dict[str, Any]) -> AgencyPolicyRoleOption:
    statements = [
        AgencyPolicyStatement(
            action=list(s["Action"]) if not isinstance(s["Action"], str) else [s["Action"]],
            effect=s["Effect"],
        )
        for s in document["Statement"]
    ]
    return AgencyPolicyRoleOption(
        display_name=name,
        type=AGENCY_POLICY_TYPE,
        description=description,
        policy=AgencyPolicy(version=document["Version"], statement=statements),
    )


class IamCloud:
    """Where every IAM session comes from: the configured endpoint and Mercato's own
    cloud account."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        """Whether Mercato's own cloud account is configured (keys and domain)."""
        return self.settings.keys is not None and bool(self.settings.domain_id)

    def with_keys(self, keys: Keys, domain_id: str) -> IamSession:
        return IamSession(self.settings, keys, domain_id)

    def with_temporary(self, credentials: TemporaryCredentials, domain_id: str) -> IamSession:
        return IamSession(self.settings, credentials.keys, domain_id)

    def assume(
        self, agency_name: str, domain_id: str, duration_seconds: int
    ) -> TemporaryCredentials:
        """Temporary credentials of ``agency_name`` in the buyer's domain ``domain_id``,
        asked for by Mercato's own account (which the agency trusts)."""
        own = self.settings.keys
        if own is None or not self.settings.domain_id:
            raise CloudError(
                "Mercato's own cloud account is not configured "
                "(MERCATO_CLOUD_DOMAIN_ID, MERCATO_CLOUD_ACCESS_KEY, MERCATO_CLOUD_SECRET_KEY)",
                call="CreateTemporaryAccessKeyByAgency",
            )
        identity = AgencyAuthIdentity(
            methods=["assume_role"],
            assume_role=IdentityAssumerole(
                agency_name=agency_name, domain_id=domain_id, duration_seconds=duration_seconds
            ),
        )
        body = CreateTemporaryAccessKeyByAgencyRequestBody(auth=AgencyAuth(identity=identity))
        with IamSession(self.settings, own, self.settings.domain_id) as session:
            response = session._call(
                "CreateTemporaryAccessKeyByAgency",
                "create_temporary_access_key_by_agency",
                CreateTemporaryAccessKeyByAgencyRequest(body=body),
            )
        credential = response.credential
        return TemporaryCredentials(
            keys=Keys(credential.access, credential.secret, credential.securitytoken),
            expires_at=_parse_time(credential.expires_at),
        )


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
