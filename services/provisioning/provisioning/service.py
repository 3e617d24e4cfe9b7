"""The provisioning service: delivers what was paid for (license keys, SaaS tenants),
keeps delivered credentials sealed, and holds the sellers' interface and signing keys.

Entrypoints only; the saga is in ``provisioning.usecases``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

import seller_interface
from mercato.contracts import provisioning as contract
from mercato.db import Database
from mercato.errors import EXPECTED, Forbidden, ValidationError
from mercato.identity import BUYER, OPERATOR, SELLER
from mercato.inbox import handles_event
from mercato.request_keys import RequestKeys
from mercato.service import MercatoService
from mercato.terms import IMAGE, SAAS
from mercato.timers import configured_timer
from mercato.transport import TimedRpcProxy, rpc
from mercato.validation import dump, load
from provisioning import deploying, deployments, domain, instance_actions, schemas, usecases
from provisioning.cloud.driver import HuaweiCloudDriver
from provisioning.endpoints import pinned_session
from provisioning.keyring import KEYS_CONFIG, Keyring
from provisioning.models import metadata
from provisioning.repository import (
    DeliveryRepository,
    DeploymentRepository,
    InstanceActionRepository,
    SellerKeyRepository,
)

_log = logging.getLogger(__name__)

WINDOW_KEY = "DELIVERY_WINDOW_SECONDS"
SWEEP_KEY = "DELIVERY_SWEEP_SECONDS"
RETRY_MAX_KEY = "DELIVERY_RETRY_MAX_SECONDS"
LEASE_KEY = "DELIVERY_LEASE_SECONDS"
SELLER_TIMEOUT_KEY = "SELLER_TIMEOUT_SECONDS"
ALLOW_PRIVATE_KEY = "ALLOW_PRIVATE_SELLER_ENDPOINTS"
CLOUD_ENDPOINT_KEY = "CLOUD_ENDPOINT"
CLOUD_TIMEOUT_KEY = "CLOUD_TIMEOUT_SECONDS"
CLOUD_REGION_KEY = "CLOUD_REGION"
DEPLOYMENT_SWEEP_KEY = "DEPLOYMENT_SWEEP_SECONDS"
DEPLOYMENT_LEASE_KEY = "DEPLOYMENT_LEASE_SECONDS"
DEPLOYMENT_POLL_KEY = "DEPLOYMENT_POLL_SECONDS"
DEPLOYMENT_RETRY_MAX_KEY = "DEPLOYMENT_RETRY_MAX_SECONDS"
DEPLOYMENT_DELETION_WINDOW_KEY = "DEPLOYMENT_DELETION_WINDOW_SECONDS"
# one deadline per step: DEPLOYMENT_STEP_<STEP>_SECONDS, e.g. DEPLOYMENT_STEP_SERVERS_SECONDS
DEPLOYMENT_STEP_KEY = "DEPLOYMENT_STEP_{}_SECONDS"
# after the purchase: instance actions (provisioning.instance_actions)
INSTANCE_ACTION_SWEEP_KEY = "INSTANCE_ACTION_SWEEP_SECONDS"
INSTANCE_ACTION_RETRY_KEY = "INSTANCE_ACTION_RETRY_SECONDS"
INSTANCE_ACTION_RETRY_MAX_KEY = "INSTANCE_ACTION_RETRY_MAX_SECONDS"
INSTANCE_ACTION_LEASE_KEY = "INSTANCE_ACTION_LEASE_SECONDS"
INSTANCE_ACTION_BATCH_KEY = "INSTANCE_ACTION_BATCH"
INSTANCE_ACTION_CONCURRENCY_KEY = "INSTANCE_ACTION_CONCURRENCY"
# an upgrade the seller has not confirmed by then fails (default: DELIVERY_WINDOW_SECONDS)
INSTANCE_ACTION_UPGRADE_WINDOW_KEY = "INSTANCE_ACTION_UPGRADE_WINDOW_SECONDS"
# a sweep hands its timer back after this long, so a stop never waits for a long queue
SWEEP_BUDGET_SECONDS = 20.0


class KeyringProvider(DependencyProvider):
    """The credential keyring, read from the config once; a service without a usable
    key refuses to start rather than deliver passwords it could not protect."""

    def setup(self):
        self.keyring = Keyring.from_spec(self.container.config.get(KEYS_CONFIG))

    def get_dependency(self, worker_ctx):
        return self.keyring


class DeliveryPolicyProvider(DependencyProvider):
    def setup(self):
        config = self.container.config
        default = usecases.DeliveryPolicy()
        self.policy = usecases.DeliveryPolicy(
            window=dt.timedelta(
                seconds=float(config.get(WINDOW_KEY) or default.window.total_seconds())
            ),
            max_retry=dt.timedelta(
                seconds=float(config.get(RETRY_MAX_KEY) or default.max_retry.total_seconds())
            ),
            lease=dt.timedelta(
                seconds=float(config.get(LEASE_KEY) or default.lease.total_seconds())
            ),
            call_budget=dt.timedelta(seconds=float(config.get(SELLER_TIMEOUT_KEY) or 5.0) + 1.0),
            allow_private_endpoints=str(config.get(ALLOW_PRIVATE_KEY, "")).lower()
            in ("1", "true", "yes"),
        )

    def get_dependency(self, worker_ctx):
        return self.policy


class DeploymentPolicyProvider(DependencyProvider):
    """The deployment saga's deadlines, lease and polling, from the config."""

    def setup(self):
        config = self.container.config
        default = deployments.DeploymentPolicy()

        def seconds(key: str, fallback: dt.timedelta) -> dt.timedelta:
            return dt.timedelta(seconds=float(config.get(key) or fallback.total_seconds()))

        self.policy = deployments.DeploymentPolicy(
            deadlines={
                step: float(config.get(DEPLOYMENT_STEP_KEY.format(step.upper())) or deadline)
                for step, deadline in default.deadlines.items()
            },
            lease=seconds(DEPLOYMENT_LEASE_KEY, default.lease),
            poll=seconds(DEPLOYMENT_POLL_KEY, default.poll),
            max_retry=seconds(DEPLOYMENT_RETRY_MAX_KEY, default.max_retry),
            deletion_window=seconds(DEPLOYMENT_DELETION_WINDOW_KEY, default.deletion_window),
        )

    def get_dependency(self, worker_ctx):
        return self.policy


class InstanceActionPolicyProvider(DependencyProvider):
    """The instance actions' backoff, lease and batch, from the config."""

    def setup(self):
        config = self.container.config
        default = domain.InstanceActionPolicy()

        def seconds(key: str, fallback: dt.timedelta) -> dt.timedelta:
            return dt.timedelta(seconds=float(config.get(key) or fallback.total_seconds()))

        self.policy = domain.InstanceActionPolicy(
            first_retry=seconds(INSTANCE_ACTION_RETRY_KEY, default.first_retry),
            max_retry=seconds(INSTANCE_ACTION_RETRY_MAX_KEY, default.max_retry),
            lease=seconds(INSTANCE_ACTION_LEASE_KEY, default.lease),
            batch=int(config.get(INSTANCE_ACTION_BATCH_KEY) or default.batch),
            concurrency=int(config.get(INSTANCE_ACTION_CONCURRENCY_KEY) or default.concurrency),
            call_budget=dt.timedelta(seconds=float(config.get(SELLER_TIMEOUT_KEY) or 5.0) + 1.0),
            upgrade_window=seconds(
                INSTANCE_ACTION_UPGRADE_WINDOW_KEY, seconds(WINDOW_KEY, default.upgrade_window)
            ),
        )

    def get_dependency(self, worker_ctx):
        return self.policy


class CloudDriverProvider(DependencyProvider):
    """The cloud's SDK clients behind ``CloudDriver``, pointed at ``CLOUD_ENDPOINT``."""

    def setup(self):
        config = self.container.config
        self.driver = HuaweiCloudDriver(
            str(config.get(CLOUD_ENDPOINT_KEY) or "http://127.0.0.1:8400"),
            timeout=float(config.get(CLOUD_TIMEOUT_KEY) or 10.0),
            region=str(config.get(CLOUD_REGION_KEY) or ""),
        )

    def get_dependency(self, worker_ctx):
        return self.driver


class SellerClients(DependencyProvider):
    """Makes the signed HTTP client for a seller's SaaS endpoint."""

    def setup(self):
        self.timeout = float(
            self.container.config.get(SELLER_TIMEOUT_KEY)
            or seller_interface.DEFAULT_TIMEOUT_SECONDS
        )

    def get_dependency(self, worker_ctx):
        def client(
            endpoint: str, access_key: str, secret: str, address: str | None = None
        ) -> seller_interface.SellerClient:
            if address is None:  # development: any address, looked up as usual
                return seller_interface.SellerClient(
                    endpoint, access_key, secret, timeout=self.timeout
                )
            return _PinnedSellerClient(
                endpoint, access_key, secret, timeout=self.timeout, session=pinned_session(address)
            )

        return client


class _PinnedSellerClient(seller_interface.SellerClient):
    """A seller client on a session pinned to the checked address, closed with it."""

    def close(self) -> None:
        super().close()
        self._session.close()


class ProvisioningService(MercatoService):
    name = "provisioning"

    db = Database(
        metadata,
        repositories={
            "deliveries": DeliveryRepository,
            "seller_keys": SellerKeyRepository,
            "deployments": DeploymentRepository,
            "request_keys": RequestKeys,
            "instance_actions": InstanceActionRepository,
        },
    )
    config = Config()
    catalog = TimedRpcProxy("catalog")
    keyring = KeyringProvider()
    policy = DeliveryPolicyProvider()
    seller_client = SellerClients()
    iam_agency = TimedRpcProxy("iam_agency")
    deployment_policy = DeploymentPolicyProvider()
    cloud = CloudDriverProvider()
    instance_action_policy = InstanceActionPolicyProvider()

    @handles_event("orders.order.paid")
    def on_order_paid(self, event) -> None:
        """Record a delivery per subscription of a paid order, due at once. The sweep
        delivers it within ``DELIVERY_SWEEP_SECONDS``: the event is acknowledged as soon
        as the deliveries are recorded, never held while a seller answers."""
        usecases.accept_paid_order(
            self.db,
            self.clock,
            order=event.data,
            policy=self.policy,
            deployment_policy=self.deployment_policy,
        )

    @handles_event(
        "supervision.flow.confirmed",
        # a professional service's confirmation creates nothing here
        concerns=lambda event: event.data["delivery_method"] == SAAS,
    )
    def on_flow_confirmed(self, event) -> None:
        """The seller confirmed a supervised SaaS request: create the tenant now."""
        usecases.start_confirmed_delivery(
            self.db, self.clock, self.policy, subscription_id=event.data["subscription_id"]
        )

    @configured_timer(SWEEP_KEY, 1.0)
    def run_due_deliveries(self) -> None:
        """Retries, and deliveries a crash left behind (safe with several replicas)."""
        started = time.monotonic()
        while time.monotonic() - started < SWEEP_BUDGET_SECONDS:
            claimed = usecases.claim_due(self.db, self.clock, self.policy)
            for delivery in claimed:
                self._step(delivery)
            failed = usecases.claim_due_release(self.db, self.clock, self.policy)
            if failed is not None:
                usecases.release_instance(
                    self.db,
                    self.clock,
                    failed,
                    keyring=self.keyring,
                    catalog=self.catalog,
                    seller_client=self.seller_client,
                    policy=self.policy,
                )
            if not claimed and failed is None:
                return

    @configured_timer(DEPLOYMENT_SWEEP_KEY, 1.0)
    def run_due_deployments(self) -> None:
        """Image deployments' rounds: steps, compensations, releases (safe with several
        replicas: each deployment is leased to one)."""
        started = time.monotonic()
        while time.monotonic() - started < SWEEP_BUDGET_SECONDS:
            claimed = deploying.claim_due_deployments(self.db, self.clock, self.deployment_policy)
            if not claimed:
                return
            for deployment in claimed:
                try:
                    deploying.advance_deployment(
                        self.db,
                        self.clock,
                        deployment,
                        iam_agency=self.iam_agency,
                        driver=self.cloud,
                        keyring=self.keyring,
                        policy=self.deployment_policy,
                    )
                except Exception:
                    # the lease runs out and another round tries again
                    self.db.rollback()
                    _log.exception("deployment %s stopped by an unexpected error", deployment.id)

    def _step(self, delivery) -> None:
        try:
            usecases.run_delivery(
                self.db,
                self.clock,
                delivery,
                keyring=self.keyring,
                catalog=self.catalog,
                seller_client=self.seller_client,
                policy=self.policy,
            )
        except Exception:
            # the lease runs out and the sweep tries again; never lose the delivery
            self.db.rollback()
            _log.exception("delivery %s stopped by an unexpected error", delivery.id)

    # -- after the purchase: instance actions --------------------------------------------
    # Each event only queues what it asks of the delivered instance (in its inbox
    # transaction); the sweep below calls the seller or the cloud.

    @handles_event("orders.subscription.frozen")
    def on_subscription_frozen(self, event) -> None:
        """SaaS: freeze the tenant; image: stop its servers."""
        instance_actions.enqueue(self.db, self.clock, event=event)

    @handles_event("orders.subscription.renewed")
    def on_subscription_renewed(self, event) -> None:
        """SaaS: unfreeze (if it was frozen) and refresh the expiry; license: sign the key
        again with the new expiry; image: start the servers (if it was frozen)."""
        instance_actions.enqueue(self.db, self.clock, event=event)

    @handles_event("orders.subscription.released")
    def on_subscription_released(self, event) -> None:
        """SaaS: release the tenant; image: release the deployment."""
        instance_actions.enqueue(self.db, self.clock, event=event)

    @handles_event("orders.subscription.upgrading")
    def on_subscription_upgrading(self, event) -> None:
        """SaaS: upgrade the tenant; the sweep announces provisioning.instance.upgraded
        or provisioning.instance.upgrade_failed."""
        instance_actions.enqueue(self.db, self.clock, event=event)

    @handles_event(
        "orders.subscription.moved",
        # only an image's resources live in the buyer's cloud account
        concerns=lambda event: event.data["delivery_method"] == IMAGE,
    )
    def on_subscription_moved(self, event) -> None:
        """An image moved to another enterprise project: its servers (and, moved with
        their associated resources, the volumes and EIPs in their project) follow."""
        deploying.move_resources(self.db, self.clock, move=event.data)

    @configured_timer(INSTANCE_ACTION_SWEEP_KEY, 2.0)
    def run_due_instance_actions(self) -> None:
        """Due instance actions, a batch at a time (safe with several replicas: each
        batch is leased to one), and the queue's gauges."""
        started = time.monotonic()
        try:
            instance_actions.refresh_gauges_if_due(self.db, self.clock)
        except Exception:
            self.db.rollback()
            _log.exception("instance action gauges not refreshed")
        while time.monotonic() - started < SWEEP_BUDGET_SECONDS:
            try:
                claimed = instance_actions.run_due(
                    self.db,
                    self.clock,
                    self.instance_action_policy,
                    keyring=self.keyring,
                    catalog=self.catalog,
                    seller_client=self.seller_client,
                    iam_agency=self.iam_agency,
                    driver=self.cloud,
                    allow_private_endpoints=self.policy.allow_private_endpoints,
                )
            except Exception:
                # the batch's lease runs out and a later round tries again
                self.db.rollback()
                _log.exception("instance actions stopped by an unexpected error")
                return
            if not claimed:
                return

    @rpc(expected_exceptions=EXPECTED)
    def get_application(self, subscription_id: str) -> dict:
        """A purchased app's application information (the password masked)."""
        buyer = self.caller.require_role(BUYER, OPERATOR)
        return dump(
            schemas.ApplicationOut,
            usecases.application(self.db, buyer=buyer, subscription_id=str(subscription_id)),
        )

    @rpc(expected_exceptions=EXPECTED)
    def reveal_credentials(self, subscription_id: str) -> dict:
        """The eye icon: the delivered username and password; every reveal recorded."""
        buyer = self.caller.require_role(BUYER)
        revealed = usecases.reveal_credentials(
            self.db,
            self.clock,
            buyer=buyer,
            subscription_id=str(subscription_id),
            correlation_id=self.caller.correlation_id,
            keyring=self.keyring,
            policy=self.policy,
        )
        return dump(contract.CredentialsResponse, revealed)

    @rpc(expected_exceptions=EXPECTED)
    def issue_interface_credentials(self) -> dict:
        """A seller's new access key and secret for its SaaS endpoint (shown once; a
        retry of the same request answers the same pair while it is the seller's)."""
        seller = self.caller.require_role(SELLER)
        return dump(
            contract.InterfaceCredentialsResponse,
            usecases.issue_interface_credentials(
                self.db,
                self.clock,
                seller=seller,
                keyring=self.keyring,
                request_key=self.caller.request_key,
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def license_public_key(self, seller_account_id: str) -> dict:
        """The public key that verifies a seller's license keys (anyone may read it)."""
        if not isinstance(seller_account_id, str) or not 0 < len(seller_account_id) <= 40:
            raise ValidationError(
                "seller id is not valid", {"seller_account_id": ["1 to 40 characters"]}
            )
        identity = self.caller.identity
        return dump(
            contract.LicensePublicKeyResponse,
            usecases.license_public_key(
                self.db,
                self.clock,
                seller_account_id=seller_account_id,
                keyring=self.keyring,
                # only the seller itself makes its key before its first sale
                create=identity is not None
                and identity.has_role(SELLER)
                and identity.account_id == seller_account_id,
            ),
        )

    # -- images: deployments --------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def prepare_deployment(self, payload: dict) -> dict:
        """orders, placing an image order: keep its deployment (password sealed) until
        the order is paid. ``{deployment_id}``; the same order again, the same id."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.PrepareDeploymentRequest, payload)
        return dump(
            contract.PrepareDeploymentResponse,
            deploying.prepare_deployment(
                self.db, self.clock, buyer=buyer, request=request, keyring=self.keyring
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def check_deployment(self, payload: dict) -> dict:
        """orders, before placing: the flavor and image exist and the quotas hold it."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.CheckDeploymentRequest, payload)
        if request["account_id"] != buyer.account_id:
            raise Forbidden("a deployment is checked for the caller's own account")
        return dump(
            contract.CheckDeploymentResponse,
            deploying.check_deployment(
                request=request, iam_agency=self.iam_agency, driver=self.cloud
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_cloud_resources(self, payload: dict) -> dict:
        """The buyer's flavors, VPCs, subnets or security groups, read in its account."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.CloudResourcesRequest, payload)
        return dump(
            contract.CloudResourcesResponse,
            deploying.list_cloud_resources(
                buyer=buyer, request=request, iam_agency=self.iam_agency, driver=self.cloud
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def release_deployment(self, payload: dict) -> dict:
        """``{subscription_id}`` or ``{deployment_id}``: delete an active deployment's
        stack (releasing, then released)."""
        caller = self.caller.require_role(BUYER, OPERATOR)
        request = load(contract.ReleaseDeploymentRequest, payload)
        if not request.get("deployment_id") and not request.get("subscription_id"):
            raise ValidationError(
                "name the deployment", {"subscription_id": ["subscription_id or deployment_id"]}
            )
        return dump(
            contract.DeploymentResponse,
            deploying.release_deployment(self.db, self.clock, caller=caller, request=request),
        )

    @rpc(expected_exceptions=EXPECTED)
    def deployment_of_order(self, order_id: str) -> dict:
        """An image order's deployment (its buyer or an operator; anyone else: 404)."""
        viewer = self.caller.require_role(BUYER, OPERATOR)
        return dump(
            contract.DeploymentResponse,
            deploying.deployment_of(self.db, viewer=viewer, order_id=str(order_id)),
        )

    @rpc(expected_exceptions=EXPECTED)
    def deployment_of_subscription(self, subscription_id: str) -> dict:
        """A purchased image's deployment (its buyer or an operator; anyone else: 404)."""
        viewer = self.caller.require_role(BUYER, OPERATOR)
        return dump(
            contract.DeploymentResponse,
            deploying.deployment_of(self.db, viewer=viewer, subscription_id=str(subscription_id)),
        )
