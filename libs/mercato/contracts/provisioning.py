"""provisioning's contracts: the events it publishes, and what its RPCs answer (the
public API's purchased-app and seller-key bodies are these very schemas).

A delivery's events carry what the buyer may see of it (usernames, URLs, a license
key), never a password: the password stays encrypted in provisioning and is shown
only through the audited reveal (``POST /v1/purchased-apps/{id}/credentials/reveal``).
"""

import datetime as dt

from marshmallow import fields, validate

from mercato.contracts.orders import DeploymentRequest
from mercato.contracts.registry import register
from mercato.terms import DELIVERY_METHODS
from mercato.validation import AnswerSchema, StrictSchema

_DELIVERY = "dlv_4e5f6a7b8c9d40e1f2a3b4c5d6e7f8a9"
_SUBSCRIPTION = "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_LINE = "oln_2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_DELIVERY_EXAMPLE = {
    "delivery_id": _DELIVERY,
    "subscription_id": _SUBSCRIPTION,
    "order_id": _ORDER,
    "order_line_id": _LINE,
    "account_id": _BUYER,
    "delivery_method": "saas",
}


class DeliveredApplicationV1(StrictSchema):
    """What the delivery method has; the rest is null."""

    instance_id = fields.String(required=True, allow_none=True)
    username = fields.String(required=True, allow_none=True)
    management_url = fields.String(required=True, allow_none=True)
    frontend_url = fields.String(required=True, allow_none=True)
    license_key = fields.String(required=True, allow_none=True)
    has_password = fields.Boolean(required=True)


class _DeliveryV1(StrictSchema):
    """Which delivery: of which subscription, on which order line, for which buyer."""

    delivery_id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    order_id = fields.String(required=True)
    order_line_id = fields.String(required=True)
    account_id = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))


class DeliverySucceededV1(_DeliveryV1):
    service_supervision = fields.Boolean(required=True)
    application = fields.Nested(DeliveredApplicationV1, required=True)
    # the subscription's period: from the first delivery attempt to the expiry the seller
    # was told and the license key carries (null: it does not expire by time)
    starts_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True, allow_none=True)
    delivered_at = fields.AwareDateTime(required=True)


class DeliveryFailedV1(_DeliveryV1):
    reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True)


register(
    "provisioning.delivery.succeeded",
    1,
    DeliverySucceededV1,
    summary="A purchased app was delivered: a license key signed for the buyer, or a SaaS "
    "tenant the seller created. Carries what the buyer may see; never a password.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_DELIVERY_EXAMPLE,
        "service_supervision": False,
        "application": {
            "instance_id": "inst_91c2d3e4f5a6",
            "username": "buyer-5d0c8e2f",
            "management_url": "https://crm.northwind.example/tenants/inst_91c2d3e4f5a6/admin/",
            "frontend_url": "https://crm.northwind.example/tenants/inst_91c2d3e4f5a6/",
            "license_key": None,
            "has_password": True,
        },
        "starts_at": dt.datetime(2026, 1, 15, 9, 30, 5, tzinfo=dt.UTC),
        "expires_at": dt.datetime(2027, 1, 15, 9, 30, 5, tzinfo=dt.UTC),
        "delivered_at": dt.datetime(2026, 1, 15, 9, 31, tzinfo=dt.UTC),
    },
)
register(
    "provisioning.delivery.failed",
    1,
    DeliveryFailedV1,
    summary="A purchased app could not be delivered within its delivery window; orders "
    "cancels the order with this reason and billing refunds it.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_DELIVERY_EXAMPLE,
        "reason": "The seller's system did not create the SaaS instance within 3 hours.",
        "failed_at": dt.datetime(2026, 1, 15, 12, 30, tzinfo=dt.UTC),
    },
)


# -- RPC --------------------------------------------------------------------------------


class ApplicationResponse(AnswerSchema):
    """How to reach what was delivered for a purchased app (``get_application``): what
    its delivery method has, the rest null."""

    delivery_status = fields.String(
        metadata={
            "description": "`pending` (being delivered), `succeeded`, `failed`, "
            "`waiting` (delivered by another flow: images, professional services; a supervised "
            "SaaS tenant until the seller confirms), or "
            "`unknown` (provisioning did not answer just now)"
        }
    )
    username = fields.String(allow_none=True)
    password = fields.String(
        allow_none=True,
        metadata={"description": "Always `******`: reveal it with the credentials reveal."},
    )
    management_url = fields.String(allow_none=True)
    frontend_url = fields.String(allow_none=True)
    license_key = fields.String(allow_none=True)


class CredentialsResponse(AnswerSchema):
    """A delivered application's sign-in, in the clear (``reveal_credentials``): this
    reveal is recorded."""

    username = fields.String()
    password = fields.String()


class InterfaceCredentialsResponse(AnswerSchema):
    """The key pair with which Mercato signs its calls to the seller's SaaS endpoints
    (``issue_interface_credentials``; docs/seller-saas-interface.md). The secret is
    shown this once; asking again replaces the pair."""

    seller_account_id = fields.String()
    access_key = fields.String(metadata={"example": "ak_3f9c…"})
    secret = fields.String()
    created_at = fields.AwareDateTime()


class LicensePublicKeyResponse(AnswerSchema):
    """The key that verifies a seller's license keys offline (``license_public_key``)."""

    seller_account_id = fields.String()
    algorithm = fields.String(metadata={"example": "Ed25519"})
    key_id = fields.String()
    public_key = fields.String(metadata={"description": "The raw 32-byte key, base64url."})
    public_key_pem = fields.String()
    license_format = fields.String()


# -- images: deployments into the buyer's cloud account ---------------------------------
#
# A deployment's events carry its steps and resources, never a credential nor the
# administrator password (sealed in provisioning, sent only to the cloud, encrypted
# under the buyer's KMS key).

_DEPLOYMENT = "dep_6a7b8c9d0e1f42a3b4c5d6e7f8a9b0c1"
_DEPLOYMENT_EXAMPLE = {
    "deployment_id": _DEPLOYMENT,
    "order_id": _ORDER,
    "subscription_id": _SUBSCRIPTION,
    "account_id": _BUYER,
}
DEPLOYMENT_STATUSES = (
    "pending",
    "creating",
    "compensating",
    "active",
    "failed",
    "releasing",
    "released",
)
DEPLOYMENT_STEPS = (
    "check_agency",
    "prepare_keys",
    "create_stack",
    "network",
    "security_group",
    "eip",
    "volumes",
    "servers",
)


class _DeploymentV1(StrictSchema):
    """Which deployment: of which order and subscription, for which buyer."""

    deployment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    subscription_id = fields.String(required=True, allow_none=True)
    account_id = fields.String(required=True)


class DeploymentStartedV1(_DeploymentV1):
    steps = fields.List(fields.String(validate=validate.OneOf(DEPLOYMENT_STEPS)), required=True)
    started_at = fields.AwareDateTime(required=True)


class DeploymentStepCompletedV1(_DeploymentV1):
    step = fields.String(required=True, validate=validate.OneOf(DEPLOYMENT_STEPS))
    started_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(required=True)
    next_step = fields.String(required=True, allow_none=True)


class DeployedResourceV1(StrictSchema):
    type = fields.String(
        required=True,
        metadata={"description": "vpc, subnet, security_group, eip, volume or server"},
    )
    id = fields.String(required=True, allow_none=True)
    name = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    addresses = fields.List(fields.String(), required=True)


class DeploymentActiveV1(_DeploymentV1):
    stack_id = fields.String(required=True, allow_none=True)
    resources = fields.List(fields.Nested(DeployedResourceV1), required=True)
    active_at = fields.AwareDateTime(required=True)


class DeploymentFailedV1(_DeploymentV1):
    reason = fields.String(required=True)
    compensation_reason = fields.String(required=True, allow_none=True)
    failed_step = fields.String(required=True, allow_none=True)
    failed_at = fields.AwareDateTime(required=True)


class DeploymentReleasedV1(_DeploymentV1):
    stack_id = fields.String(required=True, allow_none=True)
    released_at = fields.AwareDateTime(required=True)


_STARTED_AT = dt.datetime(2026, 1, 15, 9, 30, 5, tzinfo=dt.UTC)
register(
    "provisioning.deployment.started",
    1,
    DeploymentStartedV1,
    summary="An image order was paid and its deployment into the buyer's cloud account "
    "started; the steps it will run, in order.",
    subject="the deployment id",
    example_subject=_DEPLOYMENT,
    example={
        **_DEPLOYMENT_EXAMPLE,
        "steps": ["check_agency", "prepare_keys", "create_stack", "security_group", "servers"],
        "started_at": _STARTED_AT,
    },
)
register(
    "provisioning.deployment.step_completed",
    1,
    DeploymentStepCompletedV1,
    summary="A step of an image deployment completed; the next one (null: none) started.",
    subject="the deployment id",
    example_subject=_DEPLOYMENT,
    example={
        **_DEPLOYMENT_EXAMPLE,
        "step": "create_stack",
        "started_at": _STARTED_AT,
        "finished_at": dt.datetime(2026, 1, 15, 9, 30, 9, tzinfo=dt.UTC),
        "next_step": "security_group",
    },
)
register(
    "provisioning.deployment.active",
    1,
    DeploymentActiveV1,
    summary="An image deployment is active: its servers run in the buyer's cloud account; "
    "the resources created, with their ids and addresses.",
    subject="the deployment id",
    example_subject=_DEPLOYMENT,
    example={
        **_DEPLOYMENT_EXAMPLE,
        "stack_id": "stk_0a1b2c3d",
        "resources": [
            {
                "type": "server",
                "id": "srv_4d5e6f",
                "name": "helix-web",
                "status": "CREATION_COMPLETE",
                "addresses": ["192.168.0.12"],
            }
        ],
        "active_at": dt.datetime(2026, 1, 15, 9, 32, tzinfo=dt.UTC),
    },
)
register(
    "provisioning.deployment.failed",
    1,
    DeploymentFailedV1,
    summary="An image deployment failed and everything it had created was deleted; "
    "provisioning.delivery.failed follows, so orders cancels the order and billing "
    "refunds it.",
    subject="the deployment id",
    example_subject=_DEPLOYMENT,
    example={
        **_DEPLOYMENT_EXAMPLE,
        "reason": "The step servers did not finish within 600 seconds. Everything created "
        "for it was deleted.",
        "compensation_reason": "deadline",
        "failed_step": "servers",
        "failed_at": dt.datetime(2026, 1, 15, 9, 45, tzinfo=dt.UTC),
    },
)
register(
    "provisioning.deployment.released",
    1,
    DeploymentReleasedV1,
    summary="An image deployment's stack was deleted from the buyer's cloud account "
    "(the subscription ended).",
    subject="the deployment id",
    example_subject=_DEPLOYMENT,
    example={
        **_DEPLOYMENT_EXAMPLE,
        "stack_id": "stk_0a1b2c3d",
        "released_at": dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC),
    },
)


# -- RPC: deployments ---------------------------------------------------------------------


class DeploymentSpecRequest(DeploymentRequest):
    """An order's ``deployment`` as provisioning takes it: orders' ``DeploymentRequest``
    (its rules checked again at this boundary), the admin password only in
    ``prepare_deployment`` (``check_deployment`` is asked without it), and the
    availability zone a deployment may name."""

    admin_password = fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        validate=validate.Length(min=8, max=26, error="must be 8 to 26 characters"),
    )
    availability_zone = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )


class _ImageRequest(StrictSchema):
    image_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    flavors = fields.List(fields.String(), load_default=list)
    min_system_disk_gb = fields.Integer(load_default=40)
    recommended_security_group = fields.Dict(required=True)


class PrepareDeploymentRequest(StrictSchema):
    """``prepare_deployment``: orders keeps an image order's deployment here while it
    places the order."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    product_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    specification_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    deployment = fields.Nested(DeploymentSpecRequest, required=True)
    image = fields.Nested(_ImageRequest, required=True)


class PrepareDeploymentResponse(AnswerSchema):
    deployment_id = fields.String()


class CheckDeploymentRequest(StrictSchema):
    """``check_deployment``: before placing, whether the buyer's account can hold it."""

    account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    deployment = fields.Nested(DeploymentSpecRequest, required=True)
    image = fields.Nested(_ImageRequest, required=True)


class QuotaExceededSchema(AnswerSchema):
    quota = fields.String(
        metadata={"description": "instances, cores, ram, vpc, subnet, securityGroup, publicIp"}
    )
    needed = fields.Integer()
    available = fields.Integer()


class CheckDeploymentResponse(AnswerSchema):
    ok = fields.Boolean()
    quota_exceeded = fields.Nested(QuotaExceededSchema, allow_none=True)


CLOUD_RESOURCE_KINDS = ("flavors", "vpcs", "subnets", "security_groups")


class CloudResourcesRequest(StrictSchema):
    """``list_cloud_resources``: what the buyer can choose from its own account."""

    kind = fields.String(required=True, validate=validate.OneOf(CLOUD_RESOURCE_KINDS))
    vpc_id = fields.String(load_default=None, allow_none=True)


class SubnetsQuery(StrictSchema):
    """``GET /v1/cloud/subnets``: the subnets of one VPC."""

    vpc_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CloudResourcesResponse(AnswerSchema):
    """``items`` per kind: flavors ``{id, name, vcpus, ram_mb}``, vpcs ``{id, name, cidr,
    status}``, subnets ``{id, name, cidr, vpc_id, status}``, security groups ``{id, name,
    description}``."""

    kind = fields.String()
    items = fields.List(fields.Dict())


class ReleaseDeploymentRequest(StrictSchema):
    deployment_id = fields.String(load_default=None, allow_none=True)
    subscription_id = fields.String(load_default=None, allow_none=True)


class DeploymentStepSchema(AnswerSchema):
    name = fields.String()
    status = fields.String(metadata={"description": "pending, running, succeeded, failed"})
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    error = fields.String(allow_none=True)


class DeployedResourceSchema(AnswerSchema):
    type = fields.String()
    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    status = fields.String()
    addresses = fields.List(fields.String())
    enterprise_project_id = fields.String(
        allow_none=True,
        metadata={
            "description": "The enterprise project the resource is in: the order's at first, "
            "then where moves of the purchased app took it (null: paid before it was kept)",
            "example": "default",
        },
    )


class DeploymentResponse(AnswerSchema):
    """An image's deployment as its buyer sees it (``deployment_of_order``,
    ``deployment_of_subscription``, ``release_deployment``)."""

    deployment_id = fields.String()
    order_id = fields.String()
    subscription_id = fields.String(allow_none=True)
    status = fields.String(
        metadata={
            "description": "pending, creating, compensating (deleting what a failed "
            "deployment created), active, failed, releasing, released"
        }
    )
    stack_id = fields.String(allow_none=True)
    enterprise_project_id = fields.String(
        allow_none=True,
        metadata={
            "description": "The enterprise project its servers are in (or will be, while "
            "the deployment runs)",
            "example": "default",
        },
    )
    steps = fields.List(fields.Nested(DeploymentStepSchema))
    resources = fields.List(fields.Nested(DeployedResourceSchema))
    failure_reason = fields.String(allow_none=True)


# -- instance actions (after the purchase) ------------------------------------------
#
# An upgrade paid in orders (``orders.subscription.upgrading``) is applied to the SaaS
# tenant by the seller's ``upgradeInstance``; provisioning answers with one of these two.

_UPGRADE_ORDER = "ord_9a8b7c6d5e4f43a2b1c0d9e8f7a6b5c4"


class InstanceUpgradedV1(StrictSchema):
    subscription_id = fields.String(required=True)
    upgrade_order_id = fields.String(required=True)
    specification_id = fields.String(required=True)
    quantity = fields.Integer(required=True)
    upgraded_at = fields.AwareDateTime(required=True)


class InstanceUpgradeFailedV1(StrictSchema):
    subscription_id = fields.String(required=True)
    upgrade_order_id = fields.String(required=True)
    reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True)


register(
    "provisioning.instance.upgraded",
    1,
    InstanceUpgradedV1,
    summary="The seller's system applied a paid upgrade to the SaaS instance "
    "(upgradeInstance succeeded): orders gives the subscription its new specification "
    "and quantity and completes the upgrade order.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        "subscription_id": _SUBSCRIPTION,
        "upgrade_order_id": _UPGRADE_ORDER,
        "specification_id": "spc_8f9a0b1c2d3e44f5a6b7c8d9e0f1a2b3",
        "quantity": 25,
        "upgraded_at": dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC),
    },
)
register(
    "provisioning.instance.upgrade_failed",
    1,
    InstanceUpgradeFailedV1,
    summary="The seller's system refused a paid upgrade definitively (upgradeInstance "
    "answered a result code other than success, or the subscription has no SaaS "
    "instance): orders cancels the upgrade order with a full refund.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        "subscription_id": _SUBSCRIPTION,
        "upgrade_order_id": _UPGRADE_ORDER,
        "reason": "The seller's system refused the upgrade: 000002 (specificationId "
        "spc_8f9a0b1c2d3e44f5a6b7c8d9e0f1a2b3 is not offered to this tenant).",
        "failed_at": dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC),
    },
)
