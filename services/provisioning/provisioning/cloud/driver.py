"""Provisioning's calls to the cloud: the cloud's own SDK (``huaweicloudsdk*``: ecs,
vpc, eip, evs, ims, kms, rfs), under the temporary credentials of the buyer's agency
``mkp_agency_trust`` that iam-agency hands out (``agency_credentials``).

Every method first checks its IAM action against the policy document granted to that
agency (``mercato.iampolicy.evaluate``) and raises ``PolicyDenied(action)`` without
calling when the policy does not allow it: a deployment outside what the buyer
authorised fails with a clear reason instead of a 403 half way. The SDK's own errors
become ``CloudError`` (``code``, ``message``, ``status``; ``transient`` for a 5xx, a
timeout or a refused connection), ``CloudNotFound`` for a 404.

Stopping and starting servers (a frozen image subscription's, and its renewal's) goes
through an ECS job: ``stop_servers`` and ``start_servers`` ask for it and wait for it
(``job_wait_seconds``, reading it every ``job_poll_seconds``), so that a call that
returns has done the work; a job that ends in failure (``JOB_FAILED``) or is still
running at the end (``JOB_RUNNING``) is a transient ``CloudError``. Servers already
stopped (or started) are left out, so a retry asks only for what is left.

On one machine every client's endpoint is the cloud simulator (``CLOUD_ENDPOINT``,
``http://127.0.0.1:8400``); in production the region's endpoints.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkcore.http.http_config import HttpConfig

RFS_AGENCY = "mkp_rfs_agency_trust"
PROVIDER = "huaweicloud"


class CloudError(Exception):
    """A cloud call failed: ``code`` and ``message`` as the cloud answered (never a
    credential), ``status`` its HTTP status (None: no answer)."""

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None,
        action: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.action = action

    @property
    def transient(self) -> bool:
        """Worth trying again: no answer, a timeout, a 5xx or a rate limit."""
        return self.status is None or self.status >= 500 or self.status == 429

    def __str__(self) -> str:
        where = f"{self.action}: " if self.action else ""
        code = f" ({self.code})" if self.code else ""
        return f"{where}{self.message}{code}"


class CloudNotFound(CloudError):
    """The cloud has no such resource (404)."""


class StackExists(CloudError):
    """A stack of that name exists already (409): the client token matched."""


class PolicyDenied(CloudError):
    """The agency's policy does not allow ``action``; nothing was called."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"the policy of agency mkp_agency_trust does not allow {action}",
            code="POLICY_DENIED",
            status=403,
            action=action,
        )

    @property
    def transient(self) -> bool:
        return False


@dataclass(frozen=True)
class CloudCredentials:
    """Temporary credentials of ``mkp_agency_trust`` in one buyer's account, and the
    policy document granted to it (what ``agency_credentials`` answers)."""

    region: str
    domain_id: str
    project_id: str
    access_key: str
    secret_key: str = field(repr=False)
    security_token: str = field(repr=False)
    policy: dict[str, Any] = field(repr=False, default_factory=dict)
    expires_at: dt.datetime | None = None

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> CloudCredentials:
        expires = answer.get("expires_at")
        if isinstance(expires, str):
            expires = dt.datetime.fromisoformat(expires)
        return cls(
            region=answer["region"],
            domain_id=answer["domain_id"],
            project_id=answer["project_id"],
            access_key=answer["access_key"],
            secret_key=answer["secret_key"],
            security_token=answer["security_token"],
            policy=answer.get("policy") or {},
            expires_at=expires,
        )


class CloudDriver(Protocol):
    """What provisioning asks of the cloud (``HuaweiCloudDriver``; fakes in tests)."""

    def server_limits(self, creds: CloudCredentials) -> dict[str, int | None]: ...
    def network_quotas(self, creds: CloudCredentials) -> dict[str, int | None]: ...
    def flavors(self, creds: CloudCredentials) -> list[dict[str, Any]]: ...
    def image(self, creds: CloudCredentials, image_id: str) -> dict[str, Any] | None: ...
    def vpcs(self, creds: CloudCredentials) -> list[dict[str, Any]]: ...
    def subnets(self, creds: CloudCredentials, vpc_id: str | None) -> list[dict[str, Any]]: ...
    def security_groups(self, creds: CloudCredentials) -> list[dict[str, Any]]: ...
    def create_key(self, creds: CloudCredentials, alias: str) -> str: ...
    def key_usable(self, creds: CloudCredentials, key_id: str) -> bool: ...
    def encrypt_var(
        self, creds: CloudCredentials, key_id: str, var_key: str, value: str
    ) -> dict[str, Any]: ...
    def create_stack(
        self,
        creds: CloudCredentials,
        *,
        name: str,
        template: dict[str, Any],
        vars_structure: list[dict[str, Any]],
        client_token: str,
    ) -> str: ...
    def stack(self, creds: CloudCredentials, name: str) -> dict[str, Any] | None: ...
    def stack_resources(self, creds: CloudCredentials, name: str) -> list[dict[str, Any]]: ...
    def stack_events(self, creds: CloudCredentials, name: str) -> list[dict[str, Any]]: ...
    def delete_stack(self, creds: CloudCredentials, name: str) -> None: ...
    def server_addresses(self, creds: CloudCredentials, server_id: str) -> list[str]: ...
    def public_ip(self, creds: CloudCredentials, publicip_id: str) -> str | None: ...
    def stop_servers(self, creds: CloudCredentials, server_ids: list[str]) -> str | None: ...
    def start_servers(self, creds: CloudCredentials, server_ids: list[str]) -> str | None: ...


def _page_all(fetch, items_of, marker_of, limit: int = 100) -> list[Any]:
    items: list[Any] = []
    marker = None
    for _ in range(100):
        response = fetch(marker, limit)
        page = items_of(response) or []
        items.extend(page)
        marker = marker_of(response, page)
        if not page or marker is None or len(page) < limit:
            break
    return items


class HuaweiCloudDriver:
    """``CloudDriver`` through the cloud's SDK clients, one endpoint for all of them
    (the simulator serves every service's paths under one base URL)."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 10.0,
        region: str = "",
        job_wait_seconds: float = 120.0,
        job_poll_seconds: float = 1.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.region = region  # when neither the deployment nor the account names one
        # how long stop_servers and start_servers wait for their ECS job, and how often
        # they read it meanwhile
        self.job_wait_seconds = job_wait_seconds
        self.job_poll_seconds = job_poll_seconds

    # -- clients -------------------------------------------------------------------

    def _client(self, client_class, creds: CloudCredentials):
        config = HttpConfig.get_default_config()
        config.timeout = (min(self.timeout, 5.0), self.timeout)
        credentials = BasicCredentials(
            creds.access_key, creds.secret_key, creds.project_id
        ).with_security_token(creds.security_token)
        return (
            client_class.new_builder()
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoints([self.endpoint])
            .build()
        )

    def _call(self, creds: CloudCredentials, action: str, client_class, method: str, request):
        """``action`` checked against the agency's policy, then the SDK call; the SDK's
        errors as ``CloudError``."""
        _check_policy(creds, action)
        client = self._client(client_class, creds)
        try:
            return getattr(client, method)(request)
        except sdk_errors.ClientRequestException as exc:
            error = CloudNotFound if exc.status_code == 404 else CloudError
            if exc.status_code == 409 and action == "rf:stack:createStack":
                error = StackExists
            raise error(
                exc.error_msg or "refused", code=exc.error_code, status=exc.status_code,
                action=action,
            ) from None  # fmt: skip
        except sdk_errors.ServerResponseException as exc:
            raise CloudError(
                exc.error_msg or "server error", code=exc.error_code, status=exc.status_code,
                action=action,
            ) from None  # fmt: skip
        except sdk_errors.SdkException as exc:
            raise CloudError(
                f"no answer: {type(exc).__name__}", status=None, action=action
            ) from None

    # -- quotas, flavors, images, networks ------------------------------------------

    def server_limits(self, creds: CloudCredentials) -> dict[str, int | None]:
        from huaweicloudsdkecs.v2 import EcsClient, ShowServerLimitsRequest

        limits = self._call(
            creds, "ecs:quotas:get", EcsClient, "show_server_limits", ShowServerLimitsRequest()
        ).absolute

        def left(maximum, used):
            return None if maximum is None or maximum < 0 else maximum - (used or 0)

        return {
            "instances": left(limits.max_total_instances, limits.total_instances_used),
            "cores": left(limits.max_total_cores, limits.total_cores_used),
            "ram": left(limits.max_total_ram_size, limits.total_ram_used),
        }

    def network_quotas(self, creds: CloudCredentials) -> dict[str, int | None]:
        from huaweicloudsdkvpc.v2 import ShowQuotaRequest, VpcClient

        answer = self._call(creds, "vpc:quotas:list", VpcClient, "show_quota", ShowQuotaRequest())
        quotas: dict[str, int | None] = {}
        for resource in answer.quotas.resources or []:
            quota = resource.quota
            quotas[resource.type] = (
                None if quota is None or quota < 0 else quota - (resource.used or 0)
            )
        return quotas

    def flavors(self, creds: CloudCredentials) -> list[dict[str, Any]]:
        from huaweicloudsdkecs.v2 import EcsClient, ListFlavorsRequest

        answer = self._call(
            creds, "ecs:flavors:get", EcsClient, "list_flavors", ListFlavorsRequest()
        )
        return [
            {
                "id": flavor.id,
                "name": flavor.name,
                "vcpus": int(flavor.vcpus),
                "ram_mb": int(flavor.ram),
            }
            for flavor in answer.flavors or []
        ]

    def image(self, creds: CloudCredentials, image_id: str) -> dict[str, Any] | None:
        from huaweicloudsdkims.v2 import GlanceShowImageRequest, ImsClient

        try:
            answer = self._call(
                creds, "ims:images:get", ImsClient, "glance_show_image",
                GlanceShowImageRequest(image_id=image_id),
            )  # fmt: skip
        except CloudNotFound:
            return None
        return {
            "id": answer.id,
            "name": answer.name,
            "status": answer.status,
            "min_disk": answer.min_disk,
        }

    def vpcs(self, creds: CloudCredentials) -> list[dict[str, Any]]:
        from huaweicloudsdkvpc.v2 import ListVpcsRequest, VpcClient

        answer = self._call(creds, "vpc:networks:get", VpcClient, "list_vpcs", ListVpcsRequest())
        return [
            {"id": vpc.id, "name": vpc.name, "cidr": vpc.cidr, "status": vpc.status}
            for vpc in answer.vpcs or []
        ]

    def subnets(self, creds: CloudCredentials, vpc_id: str | None) -> list[dict[str, Any]]:
        from huaweicloudsdkvpc.v2 import ListSubnetsRequest, VpcClient

        answer = self._call(
            creds, "vpc:subnets:get", VpcClient, "list_subnets", ListSubnetsRequest(vpc_id=vpc_id)
        )
        return [
            {
                "id": subnet.id,
                "name": subnet.name,
                "cidr": subnet.cidr,
                "vpc_id": subnet.vpc_id,
                "status": subnet.status,
            }
            for subnet in answer.subnets or []
        ]

    def security_groups(self, creds: CloudCredentials) -> list[dict[str, Any]]:
        from huaweicloudsdkvpc.v2 import ListSecurityGroupsRequest, VpcClient

        answer = self._call(
            creds, "vpc:securityGroups:get", VpcClient, "list_security_groups",
            ListSecurityGroupsRequest(),
        )  # fmt: skip
        return [
            {"id": group.id, "name": group.name, "description": group.description}
            for group in answer.security_groups or []
        ]

    # -- KMS: the password travels encrypted under the buyer's key -------------------

    def create_key(self, creds: CloudCredentials, alias: str) -> str:
        from huaweicloudsdkkms.v2 import CreateKeyRequest, CreateKeyRequestBody, KmsClient

        answer = self._call(
            creds, "kms:cmk:create", KmsClient, "create_key",
            CreateKeyRequest(body=CreateKeyRequestBody(
                key_alias=alias, key_description="Mercato: deployment passwords"
            )),
        )  # fmt: skip
        return str(answer.key_info.key_id)

    def key_usable(self, creds: CloudCredentials, key_id: str) -> bool:
        from huaweicloudsdkkms.v2 import KmsClient, ListKeyDetailRequest, OperateKeyRequestBody

        try:
            answer = self._call(
                creds, "kms:cmk:get", KmsClient, "list_key_detail",
                ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id)),
            )  # fmt: skip
        except CloudNotFound:
            return False
        state = getattr(answer.key_info, "key_state", None)
        return state in (None, "2")  # 2: enabled

    def encrypt_var(
        self, creds: CloudCredentials, key_id: str, var_key: str, value: str
    ) -> dict[str, Any]:
        """A sensitive stack variable (``vars_structure`` entry): ``value`` encrypted
        with AES-256-GCM under a new data key of ``key_id``; only the data key's KMS
        ciphertext travels with it, which the stack service decrypts under its agency."""
        from huaweicloudsdkkms.v2 import (
            CreateDatakeyRequest,
            CreateDatakeyRequestBody,
            KmsClient,
        )

        answer = self._call(
            creds, "kms:dek:create", KmsClient, "create_datakey",
            CreateDatakeyRequest(body=CreateDatakeyRequestBody(
                key_id=key_id, datakey_length="256"
            )),
        )  # fmt: skip
        data_key = _key_bytes(answer.plain_text)
        nonce = os.urandom(12)
        sealed = AESGCM(data_key).encrypt(nonce, value.encode(), None)
        return {
            "var_key": var_key,
            "var_value": base64.b64encode(nonce + sealed).decode(),
            "encryption": {"kms": {"id": key_id, "cipher_text": answer.cipher_text}},
        }

    # -- RFS stacks ----------------------------------------------------------------

    def create_stack(
        self,
        creds: CloudCredentials,
        *,
        name: str,
        template: dict[str, Any],
        vars_structure: list[dict[str, Any]],
        client_token: str,
    ) -> str:
        """A new stack deploying ``template``; ``StackExists`` when one of that name is
        there already (the caller adopts it)."""
        import json

        from huaweicloudsdkrfs.v1 import (
            Agency,
            CreateStackRequest,
            CreateStackRequestBody,
            EncryptionStructure,
            KmsStructure,
            RfsClient,
            VarsStructure,
        )

        variables = [
            VarsStructure(
                var_key=var["var_key"],
                var_value=var["var_value"],
                encryption=EncryptionStructure(
                    kms=KmsStructure(
                        id=var["encryption"]["kms"]["id"],
                        cipher_text=var["encryption"]["kms"]["cipher_text"],
                    )
                ),
            )
            for var in vars_structure
        ]
        answer = self._call(
            creds, "rf:stack:createStack", RfsClient, "create_stack",
            CreateStackRequest(
                client_request_id=client_token,
                body=CreateStackRequestBody(
                    stack_name=name,
                    template_body=json.dumps(template),
                    vars_structure=variables or None,
                    agencies=[Agency(provider_name=PROVIDER, agency_name=RFS_AGENCY)],
                    description="Mercato image deployment",
                ),
            ),
        )  # fmt: skip
        return str(answer.stack_id)

    def stack(self, creds: CloudCredentials, name: str) -> dict[str, Any] | None:
        """``{stack_id, status, status_message}``, or None when there is no such stack."""
        from huaweicloudsdkrfs.v1 import GetStackMetadataRequest, RfsClient

        try:
            answer = self._call(
                creds, "rf:stack:getStackMetadata", RfsClient, "get_stack_metadata",
                GetStackMetadataRequest(client_request_id=_request_id(), stack_name=name),
            )  # fmt: skip
        except CloudNotFound:
            return None
        return {
            "stack_id": answer.stack_id,
            "status": answer.status,
            "status_message": answer.status_message,
        }

    def stack_resources(self, creds: CloudCredentials, name: str) -> list[dict[str, Any]]:
        """The stack's resources: ``{type, name, id, status, status_message,
        attributes}``."""
        from huaweicloudsdkrfs.v1 import ListStackResourcesRequest, RfsClient

        answer = self._call(
            creds, "rf:stack:listStackResources", RfsClient, "list_stack_resources",
            ListStackResourcesRequest(client_request_id=_request_id(), stack_name=name),
        )  # fmt: skip
        return [
            {
                "type": resource.logical_resource_type,
                "name": resource.logical_resource_name,
                "id": resource.physical_resource_id,
                "physical_name": resource.physical_resource_name,
                "status": resource.resource_status,
                "status_message": resource.status_message,
                "attributes": {
                    attribute.key: attribute.value
                    for attribute in resource.resource_attributes or []
                },
            }
            for resource in answer.stack_resources or []
        ]

    def stack_events(self, creds: CloudCredentials, name: str) -> list[dict[str, Any]]:
        from huaweicloudsdkrfs.v1 import ListStackEventsRequest, RfsClient

        answer = self._call(
            creds, "rf:stack:listStackEvents", RfsClient, "list_stack_events",
            ListStackEventsRequest(client_request_id=_request_id(), stack_name=name),
        )  # fmt: skip
        return [
            {
                "time": event.time,
                "event_type": event.event_type,
                "resource_type": event.resource_type,
                "resource_name": event.resource_name,
                "message": event.event_message,
            }
            for event in answer.stack_events or []
        ]

    def delete_stack(self, creds: CloudCredentials, name: str) -> None:
        """Asks the stack service to delete the stack and its resources; a stack that
        is not there is deleted already."""
        from huaweicloudsdkrfs.v1 import DeleteStackRequest, RfsClient

        try:
            self._call(
                creds, "rf:stack:deleteStack", RfsClient, "delete_stack",
                DeleteStackRequest(client_request_id=_request_id(), stack_name=name),
            )  # fmt: skip
        except CloudNotFound:
            return

    # -- what the buyer sees of its servers -------------------------------------------

    def server_addresses(self, creds: CloudCredentials, server_id: str) -> list[str]:
        from huaweicloudsdkecs.v2 import EcsClient, ShowServerRequest

        answer = self._call(
            creds, "ecs:cloudServers:get", EcsClient, "show_server",
            ShowServerRequest(server_id=server_id),
        )  # fmt: skip
        addresses: list[str] = []
        for entries in (answer.server.addresses or {}).values():
            for entry in entries or []:
                if entry.addr and entry.addr not in addresses:
                    addresses.append(entry.addr)
        return addresses

    def public_ip(self, creds: CloudCredentials, publicip_id: str) -> str | None:
        from huaweicloudsdkeip.v2 import EipClient, ShowPublicipRequest

        answer = self._call(
            creds, "vpc:publicIps:get", EipClient, "show_publicip",
            ShowPublicipRequest(publicip_id=publicip_id),
        )  # fmt: skip
        return answer.publicip.public_ip_address if answer.publicip else None

    # -- stopping and starting servers (ECS jobs) ---------------------------------------

    def stop_servers(self, creds: CloudCredentials, server_ids: list[str]) -> str | None:
        """Stop the servers (a soft shutdown) and wait for the job; the job's id, or None
        when every server was stopped already. ``CloudNotFound`` when a server is not in
        the account (none is stopped then); ``CloudError`` when the job fails."""
        from huaweicloudsdkecs.v2 import (
            BatchStopServersOption,
            BatchStopServersRequest,
            BatchStopServersRequestBody,
            EcsClient,
            ServerId,
        )

        _check_policy(creds, STOP_SERVERS)  # before anything is read
        moving = self._servers_not_in(creds, server_ids, SHUTOFF)
        if not moving:
            return None
        option = BatchStopServersOption(servers=[ServerId(id=i) for i in moving], type="SOFT")
        answer = self._call(
            creds, STOP_SERVERS, EcsClient, "batch_stop_servers",
            BatchStopServersRequest(body=BatchStopServersRequestBody(os_stop=option)),
        )  # fmt: skip
        return self._wait_for_server_job(creds, str(answer.job_id), STOP_SERVERS)

    def start_servers(self, creds: CloudCredentials, server_ids: list[str]) -> str | None:
        """Start the servers and wait for the job; the job's id, or None when every
        server was running already. Errors as ``stop_servers``."""
        from huaweicloudsdkecs.v2 import (
            BatchStartServersOption,
            BatchStartServersRequest,
            BatchStartServersRequestBody,
            EcsClient,
            ServerId,
        )

        _check_policy(creds, START_SERVERS)
        moving = self._servers_not_in(creds, server_ids, ACTIVE)
        if not moving:
            return None
        option = BatchStartServersOption(servers=[ServerId(id=i) for i in moving])
        answer = self._call(
            creds, START_SERVERS, EcsClient, "batch_start_servers",
            BatchStartServersRequest(body=BatchStartServersRequestBody(os_start=option)),
        )  # fmt: skip
        return self._wait_for_server_job(creds, str(answer.job_id), START_SERVERS)

    def server_status(self, creds: CloudCredentials, server_id: str) -> str | None:
        """The server's status (``ACTIVE``, ``SHUTOFF``, ``BUILD``, ``ERROR``…), or None
        when the account has no such server."""
        from huaweicloudsdkecs.v2 import EcsClient, ShowServerRequest

        try:
            answer = self._call(
                creds, "ecs:cloudServers:get", EcsClient, "show_server",
                ShowServerRequest(server_id=server_id),
            )  # fmt: skip
        except CloudNotFound:
            return None
        return answer.server.status

    def server_job(self, creds: CloudCredentials, job_id: str) -> dict[str, Any] | None:
        """An ECS job: ``{job_id, job_type, status (INIT, RUNNING, SUCCESS, FAIL),
        fail_reason, error_code}``, or None when there is no such job."""
        from huaweicloudsdkecs.v2 import EcsClient, ShowJobRequest

        try:
            answer = self._call(
                creds, "ecs:cloudServers:get", EcsClient, "show_job",
                ShowJobRequest(job_id=job_id),
            )  # fmt: skip
        except CloudNotFound:
            return None
        return {
            "job_id": answer.job_id,
            "job_type": answer.job_type,
            "status": answer.status,
            "fail_reason": answer.fail_reason,
            "error_code": answer.error_code,
        }

    def _servers_not_in(
        self, creds: CloudCredentials, server_ids: list[str], status: str
    ) -> list[str]:
        """Those of ``server_ids`` (each once) that are not in ``status`` yet;
        ``CloudNotFound`` naming the first the account does not have."""
        if not server_ids:
            raise ValueError("name at least one server")
        moving = []
        for server_id in dict.fromkeys(server_ids):
            found = self.server_status(creds, server_id)
            if found is None:
                raise CloudNotFound(
                    f"server {server_id} not found", code="Ecs.0114", status=404,
                    action="ecs:cloudServers:get",
                )  # fmt: skip
            if found != status:
                moving.append(server_id)
        return moving

    def _wait_for_server_job(self, creds: CloudCredentials, job_id: str, action: str) -> str:
        deadline = time.monotonic() + self.job_wait_seconds
        while True:
            job = self.server_job(creds, job_id)
            status = job["status"] if job else None
            if status == "SUCCESS":
                return job_id
            if job is None or status == "FAIL":
                # the cloud's failure, not the request's: worth trying again (transient)
                reason = job["fail_reason"] if job else "the cloud no longer knows the job"
                raise CloudError(
                    f"job {job_id} failed: {reason or 'no reason given'}", code="JOB_FAILED",
                    status=500, action=action,
                )  # fmt: skip
            if time.monotonic() >= deadline:
                raise CloudError(
                    f"job {job_id} still {status} after {self.job_wait_seconds:g} s",
                    code="JOB_RUNNING", status=None, action=action,
                )  # fmt: skip
            time.sleep(self.job_poll_seconds)


def _check_policy(creds: CloudCredentials, action: str) -> None:
    """``PolicyDenied`` unless the agency's policy allows ``action``."""
    from mercato.iampolicy import evaluate  # policy 1.1, as iam-agency evaluates it

    if evaluate(creds.policy, action).decision != "allow":
        raise PolicyDenied(action)


STOP_SERVERS = "ecs:cloudServers:stop"
START_SERVERS = "ecs:cloudServers:start"
ACTIVE, SHUTOFF = "ACTIVE", "SHUTOFF"


def _request_id() -> str:
    return base64.b32encode(os.urandom(10)).decode().lower()


def _key_bytes(plain_text: str) -> bytes:
    """KMS answers a data key's plaintext in hex (64 digits for 256 bits)."""
    try:
        key = bytes.fromhex(plain_text)
    except ValueError:
        key = base64.b64decode(plain_text)
    if len(key) != 32:
        raise CloudError("KMS answered a data key that is not 256 bits", code="KMS_DATAKEY")
    return key
