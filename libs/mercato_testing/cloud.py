"""The simulated cloud (``simulators/cloud``) as a real process, for tests.

Tests run under eventlet's monkey-patching, so the simulator never runs inside the
test process: ``start_cloud_simulator`` starts ``python -m cloud_simulator`` on a free
port with a database of its own and waits for its ``listening`` log line. The handle
wraps the simulator's admin routes (``/sim/...``; see ``simulators/cloud/README.md``)::

    cloud = start_cloud_simulator(tmp_path)
    buyer = cloud.create_account("buyer")      # domain_id, project_id, access_key, ...
    cloud.fault(action="ecs:cloudServers:create", mode="fail", count=1)
    assert cloud.resources(buyer["domain_id"]) == []
    cloud.stop()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
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
    IamClient,
    IdentityAssumerole,
)

from mercato.config import ROOT

START_TIMEOUT = 15.0
# Jobs and stack resources each take one step; short in tests, 0.3 s by default.
TEST_STEP_SECONDS = 0.05
# The images the simulator seeds (cloud_simulator.ims.SEEDED_IMAGES).
SEEDED_IMAGE_IDS = ("img-helix-ubuntu-22", "img-ubuntu-22.04", "img-debian-12")


class CloudSimulatorHandle:
    """One simulator process; ``url`` is the endpoint every SDK client is given."""

    image_ids = SEEDED_IMAGE_IDS

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.session = requests.Session()

    # -- the admin routes ---------------------------------------------------------------

    def admin(self, method: str, path: str, body: dict | None = None) -> Any:
        """``admin("GET", "/sim/accounts")``: the answer's JSON (None when empty);
        raises for any status >= 400."""
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_account(self, name: str) -> dict:
        """A new account and its IAM admin user: ``{domain_id, domain_name, project_id,
        region, access_key, secret_key}``."""
        return self.admin("POST", "/sim/accounts", {"name": name})

    def accounts(self) -> list[dict]:
        return self.admin("GET", "/sim/accounts")["accounts"]

    def resources(self, domain_id: str) -> list[dict]:
        """Every resource left in the account: ``[{type, id, name, status}]`` with type
        server, volume, vpc, subnet, security_group, eip or stack."""
        return self.admin("GET", f"/sim/accounts/{domain_id}/resources")["resources"]

    def set_quotas(self, domain_id: str, **quotas: int) -> dict:
        return self.admin("PATCH", f"/sim/accounts/{domain_id}/quotas", quotas)["quotas"]

    def register_image(
        self, name: str, image_id: str | None = None, min_disk: int = 40, os: str = "Linux"
    ) -> str:
        body = {"name": name, "image_id": image_id, "min_disk": min_disk, "os": os}
        return self.admin("POST", "/sim/images", body)["image_id"]

    def fault(
        self,
        action: str,
        mode: str = "fail",
        count: int = 1,
        status: int | None = None,
        error_code: str | None = None,
        delay_seconds: float | None = None,
    ) -> dict:
        """The next ``count`` calls of ``action`` (an IAM action name) fail, are delayed
        or end their job in error (``mode`` fail | delay | job_error)."""
        body = {
            "action": action,
            "mode": mode,
            "count": count,
            "status": status,
            "error_code": error_code,
            "delay_seconds": delay_seconds,
        }
        return self.admin("POST", "/sim/faults", body)

    def faults(self) -> list[dict]:
        return self.admin("GET", "/sim/faults")["faults"]

    def clear_faults(self) -> None:
        self.admin("DELETE", "/sim/faults")

    def advance_clock(self, seconds: float) -> str:
        """Move the simulator's clock (temporary credentials expire by it)."""
        return self.admin("POST", "/sim/clock", {"advance_seconds": seconds})["now"]

    # -- the process --------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        self.session.close()
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_cloud_simulator(
    tmp_dir: Path | str, step_seconds: float = TEST_STEP_SECONDS
) -> CloudSimulatorHandle:
    """Start the simulator on a free port with a database in ``tmp_dir``."""
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "cloud-simulator.log"
    env = {**os.environ, "CLOUD_SIMULATOR_STEP_SECONDS": str(step_seconds)}
    offset = log_path.stat().st_size if log_path.exists() else 0  # a reused tmp_dir's old lines
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
            [
                sys.executable,
                "-m",
                "cloud_simulator",
                "--host=127.0.0.1",
                "--port=0",
                f"--db={tmp / 'cloud-simulator.sqlite3'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace")[offset:].splitlines():
            if line.startswith("{") and '"listening"' in line:
                return CloudSimulatorHandle(process, int(json.loads(line)["port"]), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(
        f"the cloud simulator did not start:\n{log_path.read_text(errors='replace')}"
    )


# -- SDK clients and agencies in a simulator account, as Mercato's services build them --


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def global_credentials(account: dict) -> GlobalCredentials:
    """The account's admin keys, for global services (IAM)."""
    return GlobalCredentials(account["access_key"], account["secret_key"], account["domain_id"])


def global_client(url: str, account: dict, token: str | None = None, client_class=IamClient):
    """A global client (IAM by default) pointed at the simulator ``url``."""
    credentials = global_credentials(account)
    if token:
        credentials = credentials.with_security_token(token)
    return client_class.new_builder().with_credentials(credentials).with_endpoints([url]).build()


def project_client(client_class, url: str, account: dict, creds: dict | None = None):
    """A project-scoped client (ECS, VPC, ...) with the account's admin keys or with
    temporary credentials ``{access, secret, securitytoken}``."""
    if creds is None:
        credentials = BasicCredentials(
            account["access_key"], account["secret_key"], account["project_id"]
        )
    else:
        credentials = BasicCredentials(
            creds["access"], creds["secret"], account["project_id"]
        ).with_security_token(creds["securitytoken"])
    return client_class.new_builder().with_credentials(credentials).with_endpoints([url]).build()


def create_agency(iam, account: dict, name: str, trust_domain_name: str) -> str:
    """An agency in ``account`` trusting ``trust_domain_name``; its id."""
    answer = iam.create_agency(
        CreateAgencyRequest(
            body=CreateAgencyRequestBody(
                agency=CreateAgencyOption(
                    name=name,
                    domain_id=account["domain_id"],
                    trust_domain_name=trust_domain_name,
                    duration="FOREVER",
                )
            )
        )
    )
    return answer.agency.id


def grant_policy(
    iam,
    account: dict,
    agency_id: str,
    statements: list[dict],
    name: str,
    *,
    version: str = "1.1",
    description: str = "test policy",
) -> str:
    """A custom policy of ``statements`` granted to the agency on the account's project."""
    role = iam.create_agency_custom_policy(
        CreateAgencyCustomPolicyRequest(
            body=CreateAgencyCustomPolicyRequestBody(
                role=AgencyPolicyRoleOption(
                    display_name=name,
                    type="AX",
                    description=description,
                    policy=AgencyPolicy(
                        version=version,
                        statement=[
                            AgencyPolicyStatement(action=s["Action"], effect=s["Effect"])
                            for s in statements
                        ],
                    ),
                )
            )
        )
    ).role
    iam.associate_agency_with_project_permission(
        AssociateAgencyWithProjectPermissionRequest(
            project_id=account["project_id"], agency_id=agency_id, role_id=role.id
        )
    )
    return role.id


def assume(iam, trusting: dict, agency_name: str, duration: int = 900) -> dict:
    """Temporary credentials of ``trusting``'s agency, asked for by ``iam``'s account:
    ``{access, secret, securitytoken, expires_at}``."""
    answer = iam.create_temporary_access_key_by_agency(
        CreateTemporaryAccessKeyByAgencyRequest(
            body=CreateTemporaryAccessKeyByAgencyRequestBody(
                auth=AgencyAuth(
                    identity=AgencyAuthIdentity(
                        methods=["assume_role"],
                        assume_role=IdentityAssumerole(
                            agency_name=agency_name,
                            domain_id=trusting["domain_id"],
                            duration_seconds=duration,
                        ),
                    )
                )
            )
        )
    ).credential
    return {
        "access": answer.access,
        "secret": answer.secret,
        "securitytoken": answer.securitytoken,
        "expires_at": answer.expires_at,
    }


def trusted_agency(url: str, buyer: dict, mercato: dict, statements: list[dict]) -> dict:
    """An agency in ``buyer`` trusting ``mercato`` with ``statements`` granted, and
    temporary credentials of it obtained with Mercato's keys."""
    iam = global_client(url, buyer)
    name = unique("mkp_agency_trust")
    agency_id = create_agency(iam, buyer, name, mercato["domain_name"])
    grant_policy(iam, buyer, agency_id, statements, unique("policy"))
    return {
        "agency_id": agency_id,
        "name": name,
        **assume(global_client(url, mercato), buyer, name),
    }
