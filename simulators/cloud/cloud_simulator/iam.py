"""IAM: the accounts' admin users, agencies, custom policies (roles), grants on a
project, temporary credentials by agency, and the checks every other call goes through
(``authenticate`` the signature, ``authorize`` the action against the policy).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import uuid
from datetime import UTC, datetime

from werkzeug.datastructures import Headers

from . import policy, signing
from .errors import FORBIDDEN_CODE, CloudError, bad_request, conflict, not_found, style_of
from .faults import FaultOutcome, apply_faults
from .routing import Answer, Call, Caller, Route, require
from .store import Store

STYLE = "iam"
MIN_DURATION_SECONDS = 900
MAX_DURATION_SECONDS = 43200
# Cloud services an agency may trust by name: the stack service assumes agencies that
# trust "op_svc_rfs" when it creates a stack's resources.
SERVICE_DOMAINS = {"op_svc_rfs": hashlib.md5(b"op_svc_rfs").hexdigest()}  # noqa: S324 (an id, not a secret)
RFS_SERVICE_DOMAIN = "op_svc_rfs"


def iso(ts: float | None, micro: bool = True) -> str | None:
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def new_access_key() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))


def new_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


# -- authentication ---------------------------------------------------------------------


class Unauthenticated(CloudError):
    def __init__(self, message: str) -> None:
        super().__init__(401, "apigw", "APIGW.0301", message)


def authenticate(
    store: Store,
    method: str,
    path: str,
    query_pairs: list[tuple[str, str]],
    headers: Headers,
    body: bytes,
) -> Caller:
    """The caller behind a signed request, or 401 (wrong signature, unknown AK, a
    temporary AK without its token or past its expiry by the simulator's clock)."""
    try:
        signed = signing.parse_authorization(headers, datetime.now(UTC))
    except signing.SignatureRefused as exc:
        raise Unauthenticated(str(exc)) from None
    key = store.one("SELECT * FROM access_keys WHERE access_key = ?", signed.access_key)
    if key is None:
        raise Unauthenticated("Incorrect IAM authentication information: ak is not found.")
    expected = signing.expected_signature(
        key["secret_key"],
        method,
        path,
        query_pairs,
        headers,
        signed.signed_headers,
        body,
        signed.signed_at,
    )
    if not signing.signature_matches(expected, signed.signature):
        raise Unauthenticated(
            "Incorrect IAM authentication information: verify aksk signature fail."
        )
    if key["agency_id"] is not None:
        token = headers.get("X-Security-Token")
        if not token or "x-security-token" not in signed.signed_headers:
            raise Unauthenticated(
                "Incorrect IAM authentication information: temporary AK needs X-Security-Token."
            )
        if not secrets.compare_digest(token, key["security_token"]):
            raise Unauthenticated("Incorrect IAM authentication information: token mismatch.")
        if key["expires_at"] <= store.now():
            raise Unauthenticated("The token expires.")
    account = store.one("SELECT * FROM accounts WHERE domain_id = ?", key["domain_id"])
    if account is None:
        raise Unauthenticated("Incorrect IAM authentication information: account is gone.")
    agency = None
    if key["agency_id"] is not None:
        agency = store.one("SELECT * FROM agencies WHERE id = ?", key["agency_id"])
        if agency is None:
            raise Unauthenticated("Incorrect IAM authentication information: agency deleted.")
    return Caller(
        domain_id=account["domain_id"],
        domain_name=account["domain_name"],
        project_id=account["project_id"],
        access_key=signed.access_key,
        agency_id=agency["id"] if agency else None,
        agency_name=agency["name"] if agency else None,
    )


# -- authorization ----------------------------------------------------------------------


def agency_policies(store: Store, agency_id: str) -> list[dict]:
    rows = store.all(
        "SELECT r.policy FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.agency_id = ?",
        agency_id,
    )
    return [json.loads(row["policy"]) for row in rows]


def authorize(store: Store, caller: Caller, action: str) -> FaultOutcome:
    """An account's admin user may do everything in its account; an assumed agency what
    its granted policies allow. Then any injected fault for the action applies."""
    if not caller.is_admin:
        assert caller.agency_id is not None
        decision = policy.evaluate(agency_policies(store, caller.agency_id), action)
        if not decision.allowed:
            style = style_of(action)
            raise CloudError(
                403, style, FORBIDDEN_CODE[style], f"Policy doesn't allow {action} to be performed."
            )
    return apply_faults(store, action)


def assume_service_agency(store: Store, domain_id: str, agency_name: str) -> Caller:
    """What the stack service does before creating resources: act as the account's
    agency ``agency_name``, which must trust the stack service (``op_svc_rfs``)."""
    agency = store.one(
        "SELECT * FROM agencies WHERE domain_id = ? AND name = ?", domain_id, agency_name
    )
    if agency is None:
        raise CloudError(
            403, "rfs", "RF.0403", f"Agency {agency_name} not found in the stack's account."
        )
    if agency["trust_domain_id"] != SERVICE_DOMAINS[RFS_SERVICE_DOMAIN]:
        raise CloudError(
            403, "rfs", "RF.0403", f"Agency {agency_name} does not trust {RFS_SERVICE_DOMAIN}."
        )
    account = store.one("SELECT * FROM accounts WHERE domain_id = ?", domain_id)
    assert account is not None
    return Caller(
        domain_id=domain_id,
        domain_name=account["domain_name"],
        project_id=account["project_id"],
        access_key="",
        agency_id=agency["id"],
        agency_name=agency_name,
    )


def _page(call: Call, items: list) -> list:
    """IAM's paging: ``page`` (from 1) and ``per_page`` together, else everything."""
    try:
        page, per_page = int(call.query.get("page", 0)), int(call.query.get("per_page", 0))
    except ValueError:
        raise bad_request(STYLE, "page and per_page must be numbers.") from None
    if page < 1 or per_page < 1:
        return items
    return items[(page - 1) * per_page : page * per_page]


# -- agencies ---------------------------------------------------------------------------


def agency_body(row) -> dict:
    duration = row["duration"]
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": row["domain_id"],
        "trust_domain_id": row["trust_domain_id"],
        "trust_domain_name": row["trust_domain_name"],
        "description": row["description"] or "",
        "duration": duration,
        "expire_time": None,
        "create_time": iso(row["created_at"])[:-1] if row["created_at"] else None,  # type: ignore[index]
        "agency_urn": f"iam::{row['domain_id']}:agency:{row['name']}",
    }


def _trusted_domain(store: Store, option: dict) -> tuple[str, str]:
    """(trust_domain_id, trust_domain_name) from an agency option naming either."""
    name = option.get("trust_domain_name")
    domain_id = option.get("trust_domain_id")
    if name in SERVICE_DOMAINS:
        return SERVICE_DOMAINS[name], name
    if domain_id:
        row = store.one("SELECT * FROM accounts WHERE domain_id = ?", domain_id)
    elif name:
        row = store.one("SELECT * FROM accounts WHERE domain_name = ?", name)
    else:
        raise bad_request(STYLE, "trust_domain_id or trust_domain_name is required.")
    if row is None:
        raise bad_request(STYLE, "The trusted domain does not exist.", code="IAM.1012")
    return row["domain_id"], row["domain_name"]


def _duration(option: dict) -> str:
    value = option.get("duration")
    if value is None:
        return "FOREVER"
    return str(value)


def create_agency(call: Call) -> Answer:
    option = call.field("agency")
    name = call.field("agency", "name")
    require(
        option.get("domain_id") in (None, call.caller.domain_id),
        bad_request(STYLE, "domain_id is not the caller's account."),
    )
    trust_id, trust_name = _trusted_domain(call.store, option)
    agency_id = uuid.uuid4().hex
    with call.store.transaction() as db:
        if db.execute(
            "SELECT 1 FROM agencies WHERE domain_id = ? AND name = ?",
            (call.caller.domain_id, name),
        ).fetchone():
            raise conflict(STYLE, f"Agency {name} already exists.", code="IAM.1008")
        db.execute(
            "INSERT INTO agencies (id, domain_id, name, description, trust_domain_id,"
            " trust_domain_name, duration, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agency_id,
                call.caller.domain_id,
                name,
                option.get("description") or "",
                trust_id,
                trust_name,
                _duration(option),
                call.store.now(),
            ),
        )
    row = call.store.one("SELECT * FROM agencies WHERE id = ?", agency_id)
    body = agency_body(row)
    body.pop("trust_domain_name")
    body.pop("agency_urn")
    return 201, {"agency": body}


def _own_agency(call: Call):
    row = call.store.one(
        "SELECT * FROM agencies WHERE id = ? AND domain_id = ?",
        call.params["agency_id"],
        call.caller.domain_id,
    )
    if row is None:
        raise not_found(STYLE, "Agency")
    return row


def list_agencies(call: Call) -> Answer:
    asked = call.query.get("domain_id")
    if asked and asked != call.caller.domain_id:
        raise CloudError(403, STYLE, "IAM.0003", "domain_id is not the caller's account.")
    rows = call.store.all(
        "SELECT * FROM agencies WHERE domain_id = ? ORDER BY created_at", call.caller.domain_id
    )
    name = call.query.get("name")
    trust = call.query.get("trust_domain_id")
    agencies = [
        agency_body(row)
        for row in rows
        if (not name or row["name"] == name) and (not trust or row["trust_domain_id"] == trust)
    ]
    return 200, {"agencies": _page(call, agencies)}


def show_agency(call: Call) -> Answer:
    return 200, {"agency": agency_body(_own_agency(call))}


def update_agency(call: Call) -> Answer:
    row = _own_agency(call)
    option = call.field("agency")
    trust_id, trust_name = row["trust_domain_id"], row["trust_domain_name"]
    if option.get("trust_domain_id") or option.get("trust_domain_name"):
        trust_id, trust_name = _trusted_domain(call.store, option)
    call.store.run(
        "UPDATE agencies SET trust_domain_id = ?, trust_domain_name = ?, description = ?,"
        " duration = ? WHERE id = ?",
        trust_id,
        trust_name,
        option.get("description", row["description"]),
        str(option["duration"]) if option.get("duration") is not None else row["duration"],
        row["id"],
    )
    return 200, {"agency": agency_body(_own_agency(call))}


def delete_agency(call: Call) -> Answer:
    row = _own_agency(call)
    with call.store.transaction() as db:
        db.execute("DELETE FROM grants WHERE agency_id = ?", (row["id"],))
        db.execute("DELETE FROM access_keys WHERE agency_id = ?", (row["id"],))
        db.execute("DELETE FROM agencies WHERE id = ?", (row["id"],))
    return 204, None


# -- custom policies (roles) -------------------------------------------------------------


def role_body(row, references: int | None = None) -> dict:
    body = {
        "id": row["id"],
        "name": row["name"],
        "display_name": row["display_name"],
        "type": row["type"],
        "catalog": "CUSTOMED",
        "description": row["description"] or "",
        "description_cn": "",
        "domain_id": row["domain_id"],
        "policy": json.loads(row["policy"]),
        "links": {"self": f"/v3.0/OS-ROLE/roles/{row['id']}"},
        "created_time": str(int(row["created_at"] * 1000)),
        "updated_time": str(int(row["updated_at"] * 1000)),
    }
    if references is not None:
        body["references"] = references
    return body


def _valid_policy(call: Call) -> dict:
    document = call.field("role", "policy")
    require(
        isinstance(document, dict) and isinstance(document.get("Statement"), list),
        bad_request(STYLE, "role.policy must have a Statement list."),
    )
    return document


def create_role(call: Call) -> Answer:
    display_name = call.field("role", "display_name")
    role_type = call.field("role", "type")
    require(role_type in ("AX", "XA"), bad_request(STYLE, "role.type must be AX or XA."))
    document = _valid_policy(call)
    role_id = uuid.uuid4().hex
    now = call.store.now()
    with call.store.transaction() as db:
        if db.execute(
            "SELECT 1 FROM roles WHERE domain_id = ? AND display_name = ?",
            (call.caller.domain_id, display_name),
        ).fetchone():
            raise conflict(STYLE, f"Policy {display_name} already exists.", code="IAM.1108")
        count = db.execute(
            "SELECT count(*) FROM roles WHERE domain_id = ?", (call.caller.domain_id,)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO roles (id, domain_id, name, display_name, type, description, policy,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                role_id,
                call.caller.domain_id,
                f"custom_{call.caller.domain_id[:8]}_{count + 1}",
                display_name,
                role_type,
                call.field("role", "description", required=False, default=""),
                json.dumps(document),
                now,
                now,
            ),
        )
    return 201, {"role": role_body(call.store.one("SELECT * FROM roles WHERE id = ?", role_id))}


def _own_role(call: Call):
    row = call.store.one(
        "SELECT * FROM roles WHERE id = ? AND domain_id = ?",
        call.params["role_id"],
        call.caller.domain_id,
    )
    if row is None:
        raise not_found(STYLE, "Role")
    return row


def update_role(call: Call) -> Answer:
    row = _own_role(call)
    option = call.field("role")
    document = _valid_policy(call) if "policy" in option else json.loads(row["policy"])
    call.store.run(
        "UPDATE roles SET display_name = ?, description = ?, policy = ?, updated_at = ?"
        " WHERE id = ?",
        option.get("display_name") or row["display_name"],
        option.get("description", row["description"]),
        json.dumps(document),
        call.store.now(),
        row["id"],
    )
    return 200, {"role": role_body(_own_role(call))}


def list_roles(call: Call) -> Answer:
    rows = call.store.all(
        "SELECT * FROM roles WHERE domain_id = ? ORDER BY created_at", call.caller.domain_id
    )
    return 200, {
        "roles": [role_body(row) for row in _page(call, rows)],
        "links": {"self": "/v3.0/OS-ROLE/roles", "previous": None, "next": None},
        "total_number": len(rows),
    }


def show_role(call: Call) -> Answer:
    row = _own_role(call)
    references = call.store.one("SELECT count(*) AS n FROM grants WHERE role_id = ?", row["id"])[
        "n"
    ]  # type: ignore[index]
    return 200, {"role": role_body(row, references=references)}


# -- grants -----------------------------------------------------------------------------


def _grant_target(call: Call):
    require(
        call.params["project_id"] == call.caller.project_id,
        not_found(STYLE, "Project"),
    )
    return _own_agency(call)


def grant_role(call: Call) -> Answer:
    agency = _grant_target(call)
    role = _own_role(call)
    call.store.run(
        "INSERT OR IGNORE INTO grants (agency_id, project_id, role_id) VALUES (?, ?, ?)",
        agency["id"],
        call.params["project_id"],
        role["id"],
    )
    return 204, None


def check_grant(call: Call) -> Answer:
    agency = _grant_target(call)
    found = call.store.one(
        "SELECT 1 FROM grants WHERE agency_id = ? AND project_id = ? AND role_id = ?",
        agency["id"],
        call.params["project_id"],
        call.params["role_id"],
    )
    if not found:
        raise not_found(STYLE, "Grant")
    return 204, None


def revoke_role(call: Call) -> Answer:
    agency = _grant_target(call)
    call.store.run(
        "DELETE FROM grants WHERE agency_id = ? AND project_id = ? AND role_id = ?",
        agency["id"],
        call.params["project_id"],
        call.params["role_id"],
    )
    return 204, None


def list_grants(call: Call) -> Answer:
    agency = _grant_target(call)
    rows = call.store.all(
        "SELECT r.* FROM grants g JOIN roles r ON r.id = g.role_id"
        " WHERE g.agency_id = ? AND g.project_id = ? ORDER BY r.created_at",
        agency["id"],
        call.params["project_id"],
    )
    roles = []
    for row in rows:
        body = role_body(row)
        body["flag"] = ""
        body["links"] = {"self": body["links"]["self"], "previous": None, "next": None}
        roles.append(body)
    return 200, {"roles": roles}


# -- temporary credentials --------------------------------------------------------------


def assume_agency(call: Call) -> Answer:
    """CreateTemporaryAccessKeyByAgency: the caller's account must be the one the agency
    trusts; no policy action is checked (as on the real cloud)."""
    methods = call.field("auth", "identity", "methods")
    require("assume_role" in methods, bad_request(STYLE, "methods must include assume_role."))
    assume = call.field("auth", "identity", "assume_role")
    agency_name = assume.get("agency_name")
    if assume.get("domain_id"):
        account = call.store.one("SELECT * FROM accounts WHERE domain_id = ?", assume["domain_id"])
    else:
        account = call.store.one(
            "SELECT * FROM accounts WHERE domain_name = ?", assume.get("domain_name")
        )
    if account is None or not agency_name:
        raise not_found(STYLE, "Agency")
    agency = call.store.one(
        "SELECT * FROM agencies WHERE domain_id = ? AND name = ?",
        account["domain_id"],
        agency_name,
    )
    if agency is None:
        raise not_found(STYLE, "Agency")
    if agency["trust_domain_id"] != call.caller.domain_id:
        raise CloudError(
            403, STYLE, "IAM.0003", "The caller's account is not trusted by the agency."
        )
    duration = int(assume.get("duration_seconds") or MIN_DURATION_SECONDS)
    require(
        MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS,
        bad_request(STYLE, "duration_seconds must be between 900 and 43200."),
    )
    access, secret = new_access_key(), new_secret_key()
    token = secrets.token_urlsafe(96)
    expires_at = call.store.now() + duration
    call.store.run(
        "INSERT INTO access_keys (access_key, secret_key, domain_id, agency_id, security_token,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        access,
        secret,
        account["domain_id"],
        agency["id"],
        token,
        expires_at,
    )
    return 201, {
        "credential": {
            "access": access,
            "secret": secret,
            "securitytoken": token,
            "expires_at": iso(expires_at),
        }
    }


GRANT_PATH = "/v3.0/OS-AGENCY/projects/<project_id>/agencies/<agency_id>/roles"
ROUTES = [
    Route("POST", "/v3.0/OS-AGENCY/agencies", "CreateAgency", "iam:agencies:createAgency", STYLE, create_agency, False),
    Route("GET", "/v3.0/OS-AGENCY/agencies", "ListAgencies", "iam:agencies:listAgencies", STYLE, list_agencies, False),
    Route("GET", "/v3.0/OS-AGENCY/agencies/<agency_id>", "ShowAgency", "iam:agencies:getAgency", STYLE, show_agency, False),
    Route("PUT", "/v3.0/OS-AGENCY/agencies/<agency_id>", "UpdateAgency", "iam:agencies:updateAgency", STYLE, update_agency, False),
    Route("DELETE", "/v3.0/OS-AGENCY/agencies/<agency_id>", "DeleteAgency", "iam:agencies:deleteAgency", STYLE, delete_agency, False),
    Route("POST", "/v3.0/OS-ROLE/roles", "CreateAgencyCustomPolicy", "iam:roles:createRole", STYLE, create_role, False),
    Route("GET", "/v3.0/OS-ROLE/roles", "ListCustomPolicies", "iam:roles:listRoles", STYLE, list_roles, False),
    Route("GET", "/v3.0/OS-ROLE/roles/<role_id>", "ShowCustomPolicy", "iam:roles:getRole", STYLE, show_role, False),
    Route("PATCH", "/v3.0/OS-ROLE/roles/<role_id>", "UpdateAgencyCustomPolicy", "iam:roles:updateRole", STYLE, update_role, False),
    Route("PUT", GRANT_PATH + "/<role_id>", "AssociateAgencyWithProjectPermission", "iam:permissions:grantRoleToAgencyOnProject", STYLE, grant_role, False),
    Route("HEAD", GRANT_PATH + "/<role_id>", "CheckProjectPermissionForAgency", "iam:permissions:checkRoleForAgencyOnProject", STYLE, check_grant, False),
    Route("DELETE", GRANT_PATH + "/<role_id>", "RemoveProjectPermissionFromAgency", "iam:permissions:revokeRoleFromAgencyOnProject", STYLE, revoke_role, False),
    Route("GET", GRANT_PATH, "ListProjectPermissionsForAgency", "iam:permissions:listRolesForAgencyOnProject", STYLE, list_grants, False),
    Route("POST", "/v3.0/OS-CREDENTIAL/securitytokens", "CreateTemporaryAccessKeyByAgency", None, STYLE, assume_agency, False),
]  # fmt: skip
