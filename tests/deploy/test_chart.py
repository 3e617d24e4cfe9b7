"""The Helm chart, rendered offline: valid Kubernetes objects, every process run the way
the image and topology.py expect, safe defaults, and values checked before anything is
applied."""

import base64
import ipaddress
import json
import re
import shutil

import helm_python as helm
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate

from mercato import config as mercato_config
from mercato.topology import GATEWAY, PROCESSES, SERVICES
from tests.deploy import chart

KUBERNETES_VERSION = "1.30.0"  # the oldest minor still supported upstream when written
DEPLOYMENT_NAME = {p.name: f"{chart.RELEASE}-{p.name.replace('_', '-')}" for p in PROCESSES}
# topology's port of the gateway is its public API (where `make run` also serves the
# probes); in the chart the gateway serves them on an ops port of its own, apart from
# its worker pool, like every service
GATEWAY_API_PORT = GATEWAY.ops_port
GATEWAY_OPS_PORT = 9100


def ops_port(process):
    return GATEWAY_OPS_PORT if process is GATEWAY else process.ops_port


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def env_names(container):
    return {entry["name"] for entry in container.get("env", [])}


# --- lint and Kubernetes validity ---------------------------------------------------


@pytest.mark.parametrize("values", ["default", "production"])
def test_chart_lints_without_warnings(values):
    given = chart.REQUIRED_VALUES if values == "default" else chart.production_values()
    report = helm.lint(
        chart.CHART_DIR,
        given,
        strict=True,
        namespace=chart.NAMESPACE,
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], problems or report["errors"]


def assert_valid(objects):
    """Every object valid for Kubernetes, or of a custom kind checked elsewhere."""
    unchecked = set()
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.add(obj["kind"])
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
    assert unchecked <= chart.CUSTOM_KINDS, unchecked - chart.CUSTOM_KINDS


def test_every_object_is_valid_for_kubernetes_or_a_known_custom_kind(objects):
    assert_valid(objects)


def test_the_validator_catches_a_broken_deployment(default_objects):
    deployment = json.loads(
        json.dumps(chart.of_kind(default_objects, "Deployment")["mercato-orders"])
    )
    containers_of(deployment)[0]["ports"][0]["containerPort"] = "9102"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_object_names_are_unique_per_kind(objects):
    seen = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(seen) == len(set(seen))


# --- processes as topology.py and the image know them -------------------------------


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_each_process_runs_its_own_command_on_its_own_port(default_objects, process):
    deployment = chart.of_kind(default_objects, "Deployment")[DEPLOYMENT_NAME[process.name]]
    (container,) = containers_of(deployment)
    assert container["args"] == [process.name]  # deploy/entrypoint.py maps it via topology
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    expected = {"ops": ops_port(process)}
    if process is GATEWAY:
        expected["http"] = GATEWAY_API_PORT
    assert ports == expected
    # the probes go to the ops server, which answers while every worker is busy
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "ops"}
    service = chart.of_kind(default_objects, "Service")[DEPLOYMENT_NAME[process.name]]
    service_ports = {port["name"]: port for port in service["spec"]["ports"]}
    assert set(service_ports) == set(expected)
    for name, port in service_ports.items():
        assert port["targetPort"] == name
    assert service_ports["ops"]["port"] == ops_port(process)
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_ingress_sends_the_public_api_to_the_gateway_s_http_port_not_its_ops_port(
    production_objects,
):
    service = chart.of_kind(production_objects, "Service")[DEPLOYMENT_NAME["gateway"]]
    http = {p["name"]: p for p in service["spec"]["ports"]}["http"]
    assert http["port"] == GATEWAY_API_PORT
    (ingress,) = chart.of_kind(production_objects, "Ingress").values()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_every_variable_the_chart_sets_is_one_the_process_reads(default_objects, process):
    """A renamed variable in a config.yaml must not leave the chart setting a dead one."""
    deployment = chart.of_kind(default_objects, "Deployment")[DEPLOYMENT_NAME[process.name]]
    (container,) = containers_of(deployment)
    config_map = chart.of_kind(default_objects, "ConfigMap")[chart.RELEASE]["data"]
    prefixes = tuple(f"{p.env_prefix}_" for p in PROCESSES)
    own = {
        name
        for name in config_map
        if name.startswith(f"{process.env_prefix}_") or not name.startswith(prefixes)
    }
    config_text = process.config_path.read_text()
    source_text = "\n".join(
        path.read_text() for path in (process.directory / process.package).rglob("*.py")
    )
    read = set(re.findall(r"\$\{([A-Z0-9_]+):", config_text))
    for name in own | env_names(container):
        assert name in read or re.search(rf"\b{name}\b", source_text), (
            f"{process.name}: the chart sets {name}, which neither {process.config_path.name} "
            f"nor the {process.package} package reads"
        )
    database_url = f"{process.env_prefix}_DATABASE_URL"
    assert f"${{{database_url}:" in config_text and database_url in env_names(container)


def test_the_ops_addresses_bind_every_interface_on_the_process_ports(default_objects):
    data = chart.of_kind(default_objects, "ConfigMap")[chart.RELEASE]["data"]
    for process in PROCESSES:
        variable = f"{process.env_prefix}_OPS_ADDRESS"
        assert data[variable] == f"0.0.0.0:{ops_port(process)}"
        # read into the key mercato.metrics.Observability starts its ops server from
        assert f"{mercato_config.OPS_ADDRESS}: ${{{variable}:" in process.config_path.read_text()
    assert data["GATEWAY_ADDRESS"] == f"0.0.0.0:{GATEWAY_API_PORT}"
    assert "WEB_SERVER_ADDRESS: ${GATEWAY_ADDRESS:" in GATEWAY.config_path.read_text()
    ports = [ops_port(p) for p in PROCESSES] + [GATEWAY_API_PORT]
    assert len(ports) == len(set(ports))


def test_whole_numbers_in_the_environment_are_written_as_integers():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "settings": {"rpcTimeoutSeconds": 20.0, "env": {"GATEWAY_MAX_BODY_BYTES": 1000000}},
            "processes": {
                "gateway": {
                    "env": {
                        "GATEWAY_IDEMPOTENCY_TTL_HOURS": 1000000,
                        "GATEWAY_TOKEN_CACHE_SECONDS": 2.5,
                        "GATEWAY_PRODUCT_CACHE_SECONDS": "1e3",
                    }
                }
            },
        },
    )
    objects = chart.manifests(values)
    data = chart.of_kind(objects, "ConfigMap")[chart.RELEASE]["data"]
    assert data["GATEWAY_MAX_BODY_BYTES"] == "1000000"
    assert data["RPC_TIMEOUT_SECONDS"] == "20"
    (container,) = containers_of(chart.of_kind(objects, "Deployment")[DEPLOYMENT_NAME["gateway"]])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GATEWAY_IDEMPOTENCY_TTL_HOURS"] == "1000000"
    assert env["GATEWAY_TOKEN_CACHE_SECONDS"] == "2.5"
    assert env["GATEWAY_PRODUCT_CACHE_SECONDS"] == "1e3"  # a string stays as written


# --- what every Deployment must have -----------------------------------------------


def test_every_deployment_has_probes_resources_and_a_locked_down_security_context(objects):
    deployments = chart.of_kind(objects, "Deployment")
    assert len(deployments) == len(PROCESSES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["path"], (name, probe)
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["runAsNonRoot"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, name


def test_a_stopping_replica_outlives_its_longest_worker(objects):
    rpc_timeout = float(
        chart.of_kind(objects, "ConfigMap")[chart.RELEASE]["data"]["RPC_TIMEOUT_SECONDS"]
    )
    for name, deployment in chart.of_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        sleep = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod["terminationGracePeriodSeconds"] > sleep + rpc_timeout, name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def test_every_process_has_a_pdb_an_hpa_and_a_service_monitor(production_objects):
    deployments = set(chart.of_kind(production_objects, "Deployment"))
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor", "Service"):
        assert set(chart.of_kind(production_objects, kind)) == deployments, kind
    for name, hpa in chart.of_kind(production_objects, "HorizontalPodAutoscaler").items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_defaults_also_give_every_process_a_pdb_and_an_hpa(default_objects):
    deployments = set(chart.of_kind(default_objects, "Deployment"))
    assert set(chart.of_kind(default_objects, "PodDisruptionBudget")) == deployments
    assert set(chart.of_kind(default_objects, "HorizontalPodAutoscaler")) == deployments
    assert not chart.of_kind(default_objects, "ServiceMonitor")  # needs the CRD: opt in


def test_production_runs_three_replicas_of_everything_on_a_database_each(production_objects):
    for name, hpa in chart.of_kind(production_objects, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] >= 3, name
    for name, pdb in chart.of_kind(production_objects, "PodDisruptionBudget").items():
        assert pdb["spec"]["minAvailable"] < 3, name
    databases = {}
    for process in PROCESSES:
        deployment = chart.of_kind(production_objects, "Deployment")[DEPLOYMENT_NAME[process.name]]
        (container,) = containers_of(deployment)
        (ref,) = [
            e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if e["name"] == f"{process.env_prefix}_DATABASE_URL"
        ]
        databases[process.name] = ref["name"]
    assert len(set(databases.values())) == len(PROCESSES), databases
    assert not chart.of_kind(production_objects, "Secret")  # every secret made beforehand


def test_production_refuses_the_test_clock(default_objects, production_objects):
    """values-production.yaml says production: a process configured with the test clock
    (MERCATO_CLOCK=controllable) then does not start (mercato.clock)."""

    def environment(objects) -> str:
        settings = chart.of_kind(objects, "ConfigMap")["mercato"]  # every process's env
        return settings["data"]["MERCATO_ENVIRONMENT"]

    assert environment(production_objects) == "production"
    assert environment(default_objects) == "development"


def test_a_config_change_rolls_the_pods(default_objects):
    changed = chart.manifests(
        chart.merged(chart.REQUIRED_VALUES, {"settings": {"logLevel": "DEBUG"}})
    )
    before = chart.of_kind(default_objects, "Deployment")["mercato-orders"]
    after = chart.of_kind(changed, "Deployment")["mercato-orders"]
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


# --- secrets and hooks ----------------------------------------------------------------


def secret_keys(objects):
    return {
        name: set(secret.get("data") or {})
        for name, secret in chart.of_kind(objects, "Secret").items()
    }


def test_every_secret_reference_resolves_to_a_key_the_chart_writes(default_objects):
    keys = secret_keys(default_objects)
    for kind in ("Deployment", "Job"):
        for name, obj in chart.of_kind(default_objects, kind).items():
            for container in containers_of(obj):
                for entry in container.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in keys.get(ref["name"], set()), (kind, name, ref)


def test_the_processes_read_secrets_that_are_not_hooks_and_the_hooks_read_a_copy_made_first(
    default_objects,
):
    secrets = chart.of_kind(default_objects, "Secret")
    regular = [s for s in secrets.values() if not chart.hook_of(s)]
    hooks = [s for s in secrets.values() if chart.hook_of(s)]
    assert len(regular) == 1 and len(hooks) == 1
    (hook_secret,) = hooks
    assert chart.hook_of(hook_secret) == {"pre-install", "pre-upgrade"}
    secret_weight = int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    jobs = chart.of_kind(default_objects, "Job")
    for process in PROCESSES:
        (job,) = [
            j
            for j in jobs.values()
            if containers_of(j)[0]["args"] == ["mercato-migrate", process.name]
        ]
        assert chart.hook_of(job) == {"pre-install", "pre-upgrade"}
        assert int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) > secret_weight
        refs = [
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in containers_of(job)[0]["env"]
            if "valueFrom" in e
        ]
        assert refs == [hook_secret["metadata"]["name"]]
    decoded = {k: base64.b64decode(v).decode() for k, v in regular[0]["data"].items()}
    assert (
        decoded["ORDERS_DATABASE_URL"]
        == chart.REQUIRED_VALUES["processes"]["orders"]["database"]["url"]
    )


def test_an_existing_secret_replaces_the_chart_s_own_for_that_value():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "processes": {
                "orders": {
                    "database": {
                        "url": "",
                        "existingSecret": "orders-pg-app",
                        "existingSecretKey": "uri",
                    }
                }
            }
        },
    )
    objects = chart.manifests(values)
    for kind, name in (("Deployment", "mercato-orders"), ("Job", "mercato-orders-migrate")):
        (container,) = containers_of(chart.of_kind(objects, kind)[name])
        (ref,) = [
            e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if e["name"] == "ORDERS_DATABASE_URL"
        ]
        assert ref == {"name": "orders-pg-app", "key": "uri"}
    assert all("ORDERS_DATABASE_URL" not in keys for keys in secret_keys(objects).values())


def test_subscriber_queues_are_declared_after_the_migrations_and_before_the_services():
    queues = [
        {
            "queue": "reports.orders",
            "bindings": [{"exchange": "orders.events", "routing_key": "orders.order.*"}],
        },
        {
            "queue": "audit.all",
            "bindings": [{"exchange": "billing.events", "routing_key": "#"}],
            "quorum": False,
        },
    ]
    objects = chart.manifests(
        chart.merged(
            chart.REQUIRED_VALUES, {"eventSubscribers": {"queues": queues, "quorumByDefault": True}}
        )
    )
    jobs = chart.of_kind(objects, "Job")
    (declare,) = [
        j
        for j in jobs.values()
        if containers_of(j)[0]["args"] == ["mercato-declare-subscriber-queues"]
    ]
    migrate_weights = {
        int(j["metadata"]["annotations"]["helm.sh/hook-weight"])
        for j in jobs.values()
        if j is not declare
    }
    assert chart.hook_of(declare) == {"pre-install", "pre-upgrade"}
    assert int(declare["metadata"]["annotations"]["helm.sh/hook-weight"]) > max(migrate_weights)
    env = {e["name"]: e for e in containers_of(declare)[0]["env"]}
    declared = json.loads(env["EVENT_SUBSCRIBER_QUEUES"]["value"])
    assert [q["quorum"] for q in declared] == [True, False]
    assert [q["queue"] for q in declared] == ["reports.orders", "audit.all"]
    ref = env["AMQP_URI"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] in secret_keys(objects)[ref["name"]]
    assert_valid([declare])
    assert not [
        j
        for j in chart.manifests(chart.REQUIRED_VALUES)
        if j["kind"] == "Job" and "subscriber" in j["metadata"]["name"]
    ]


# --- scaling ------------------------------------------------------------------------


def test_keda_scales_a_service_on_its_rpc_queue_instead_of_the_hpa():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "processes": {
                "iam_agency": {
                    "autoscaling": {"enabled": False},
                    "keda": {"enabled": True, "extraQueues": ["evt-x"]},
                }
            }
        },
    )
    objects = chart.manifests(values)
    (scaled,) = chart.of_kind(objects, "ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "mercato-iam-agency"
    assert scaled["spec"]["scaleTargetRef"]["name"] in chart.of_kind(objects, "Deployment")
    assert [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]] == [
        "rpc-iam_agency",
        "evt-x",
    ]
    authentications = chart.of_kind(objects, "TriggerAuthentication")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["authenticationRef"]["name"] in authentications
    (target,) = authentications["mercato-iam-agency"]["spec"]["secretTargetRef"]
    assert target["parameter"] == "host" and target["key"] in secret_keys(objects)[target["name"]]
    assert "mercato-iam-agency" not in chart.of_kind(objects, "HorizontalPodAutoscaler")
    assert "replicas" not in chart.of_kind(objects, "Deployment")["mercato-iam-agency"]["spec"]
    assert_valid(objects)


# --- network policy -----------------------------------------------------------------


def test_services_take_traffic_only_from_the_gateway_and_monitoring_on_their_metrics_port(
    default_objects,
):
    policies = chart.of_kind(default_objects, "NetworkPolicy")
    baseline = policies["mercato-default"]["spec"]
    assert baseline["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mercato",
        "app.kubernetes.io/instance": chart.RELEASE,
    }  # every pod of the release, the hook Jobs too
    assert baseline["policyTypes"] == ["Ingress", "Egress"] and baseline["ingress"] == []
    egress_ports = {port["port"] for rule in baseline["egress"] for port in rule["ports"]}
    assert egress_ports == {53, 5671, 5672, 5432}
    services = policies["mercato-services"]["spec"]
    components = set(services["podSelector"]["matchExpressions"][0]["values"])
    assert components == {p.name.replace("_", "-") for p in SERVICES}
    (rule,) = services["ingress"]
    assert rule["ports"] == [{"port": "ops", "protocol": "TCP"}]
    sources = rule["from"]
    assert sources[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert sources[1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }


MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def gateway_ingress_by_port(objects):
    """Port name -> the `from` of each ingress rule of the gateway's policy opening it."""
    policy = chart.of_kind(objects, "NetworkPolicy")[DEPLOYMENT_NAME["gateway"]]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert policy["policyTypes"] == ["Ingress"]
    by_port = {}
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            by_port.setdefault(port["port"], []).append(rule.get("from"))
    return by_port


def test_the_gateway_takes_its_api_port_from_anyone_and_its_ops_port_from_monitoring_only(
    default_objects,
):
    # Prometheus scrapes the gateway's ops port (its ServiceMonitor's endpoint)
    assert gateway_ingress_by_port(default_objects) == {"http": [None], "ops": [[MONITORING]]}


def test_gateway_from_narrows_the_api_port_and_leaves_the_ops_port_to_monitoring(
    production_objects,
):
    gateway_from = chart.production_values()["networkPolicy"]["gatewayFrom"]
    assert gateway_from
    assert gateway_ingress_by_port(production_objects) == {
        "http": [[*gateway_from, MONITORING]],
        "ops": [[MONITORING]],
    }


PUBLIC_ADDRESSES = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
INTERNAL_ADDRESSES = [
    "10.96.0.1",  # a Service ClusterIP
    "172.20.3.4",
    "192.168.1.10",
    "127.0.0.1",
    "169.254.169.254",  # the cloud's metadata service
    "100.64.0.7",
    "fd12:3456::1",
    "fe80::1",
    "::1",
]


def selects(selector, labels):
    """Whether a LabelSelector selects a pod with these labels (In and NotIn only)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"]) in expression["values"]
        if present != (expression["operator"] == "In"):
            return False
    return True


def reaches(policies, labels, address, port):
    """Whether the NetworkPolicies let a pod with these labels open a TCP connection to
    an address outside the cluster's pods (a selector peer matches pods, never it)."""
    ip = ipaddress.ip_address(address)
    for policy in policies:
        spec = policy["spec"]
        if "Egress" not in spec["policyTypes"] or not selects(spec["podSelector"], labels):
            continue
        for rule in spec.get("egress", []):
            ports = rule.get("ports")
            if ports is not None and not any(
                p.get("protocol", "TCP") == "TCP" and p.get("port") in (None, port) for p in ports
            ):
                continue
            peers = rule.get("to")
            if peers is None:
                return True
            for peer in peers:
                block = peer.get("ipBlock")
                if not block:
                    continue
                cidr = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                if ip.version == cidr.version and ip in cidr and not any(ip in e for e in excepted):
                    return True
    return False


def pod_labels(objects):
    """Component -> the labels of its pods, for every Deployment and hook Job."""
    return {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
    }


def test_only_provisioning_reaches_sellers_on_443_and_never_inside_the_cluster(objects):
    policies = list(chart.of_kind(objects, "NetworkPolicy").values())
    pods = pod_labels(objects)
    provisioning = pods.pop(DEPLOYMENT_NAME["provisioning"])
    # the gateway reaches its object store over HTTPS (networkPolicy.objectStore; an S3
    # endpoint is a public address unless `to` narrows it)
    gateway = pods.pop(DEPLOYMENT_NAME["gateway"])
    # iam-agency reaches the cloud's API on 443 (networkPolicy.cloud, tests/deploy/test_cloud.py)
    iam_agency = pods.pop(DEPLOYMENT_NAME["iam_agency"])
    # billing reaches the card provider on 443 (networkPolicy.cardProvider,
    # tests/deploy/test_card_provider.py)
    pods.pop(DEPLOYMENT_NAME["billing"])
    assert pods, "the other Deployments and the hook Jobs"

    for address in PUBLIC_ADDRESSES:
        assert reaches(policies, provisioning, address, 443), address
        assert not reaches(policies, provisioning, address, 80), address
        assert reaches(policies, gateway, address, 443), address
        assert not reaches(policies, gateway, address, 80), address
        for name, labels in pods.items():
            assert not reaches(policies, labels, address, 443), (name, address)
    for address in INTERNAL_ADDRESSES:
        assert not reaches(policies, provisioning, address, 443), address
        assert not reaches(policies, iam_agency, address, 443), address


def test_the_gateways_egress_to_its_object_store_can_be_narrowed():
    narrowed = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "networkPolicy": {
                "objectStore": {"ports": [9000], "to": [{"ipBlock": {"cidr": "10.1.2.0/24"}}]}
            }
        },
    )
    objects = chart.manifests(narrowed)
    policies = list(chart.of_kind(objects, "NetworkPolicy").values())
    gateway = pod_labels(objects)[DEPLOYMENT_NAME["gateway"]]
    assert reaches(policies, gateway, "10.1.2.3", 9000)
    assert not reaches(policies, gateway, PUBLIC_ADDRESSES[0], 443)


def test_the_gateway_is_told_its_object_store_and_spools_uploads_in_a_larger_tmp():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "processes": {
                "gateway": {
                    "objectStore": {
                        "endpointUrl": "https://minio.storage:9000",
                        "addressingStyle": "path",
                        "accessKeyId": {"value": "AKIDEXAMPLE"},
                        "secretAccessKey": {"existingSecret": "store-keys"},
                    }
                }
            }
        },
    )
    objects = chart.manifests(values)
    (config,) = chart.of_kind(objects, "ConfigMap").values()
    assert config["data"]["GATEWAY_OBJECT_STORE"] == "s3"
    assert config["data"]["GATEWAY_OBJECT_STORE_BUCKET"] == "mercato-attachments"
    assert config["data"]["GATEWAY_OBJECT_STORE_ENDPOINT_URL"] == "https://minio.storage:9000"
    assert config["data"]["GATEWAY_OBJECT_STORE_ADDRESSING_STYLE"] == "path"
    secret = chart.of_kind(objects, "Secret")[chart.RELEASE]
    assert base64.b64decode(secret["data"]["GATEWAY_OBJECT_STORE_ACCESS_KEY_ID"]) == b"AKIDEXAMPLE"
    deployment = chart.of_kind(objects, "Deployment")[DEPLOYMENT_NAME["gateway"]]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GATEWAY_OBJECT_STORE_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "store-keys",
        "key": "GATEWAY_OBJECT_STORE_SECRET_ACCESS_KEY",
    }
    (tmp,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == "1Gi"


def test_seller_egress_can_be_turned_off_or_given_other_ports():
    def without_cloud(objects):
        """The policies but the cloud API's (which opens 443 to provisioning too)."""
        policies = chart.of_kind(objects, "NetworkPolicy")
        assert policies.pop(f"{chart.RELEASE}-cloud")
        return list(policies.values())

    off = chart.merged(
        chart.REQUIRED_VALUES, {"processes": {"provisioning": {"sellerEgress": {"enabled": False}}}}
    )
    policies = without_cloud(chart.manifests(off))
    labels = pod_labels(chart.manifests(off))[DEPLOYMENT_NAME["provisioning"]]
    assert not reaches(policies, labels, PUBLIC_ADDRESSES[0], 443)

    other = chart.merged(
        chart.REQUIRED_VALUES, {"processes": {"provisioning": {"sellerEgress": {"ports": [8443]}}}}
    )
    objects = chart.manifests(other)
    policies = without_cloud(objects)
    labels = pod_labels(objects)[DEPLOYMENT_NAME["provisioning"]]
    assert reaches(policies, labels, PUBLIC_ADDRESSES[0], 8443)
    assert not reaches(policies, labels, PUBLIC_ADDRESSES[0], 443)
    assert not reaches(policies, labels, "10.0.0.1", 8443)


# --- values checks ------------------------------------------------------------------


def without(values, *path):
    values = chart.merged(values)
    *parents, last = path
    node = values
    for key in parents:
        node = node[key]
    del node[last]
    return values


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "processes": {
                    "orders": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}
                }
            },
            "processes.orders: keda.enabled and autoscaling.enabled both set",
        ),
        ({"ingress": {"enabled": True, "hosts": []}}, "ingress.enabled: name at least one host"),
        (
            {"processes": {"billing": {"database": {"url": ""}}}},
            "processes.billing.database: set url (postgresql://",
        ),
        (
            {"processes": {"billing": {"database": {"url": "sqlite:///var/billing.sqlite3"}}}},
            "processes.billing.database.url: SQLite is a file inside one pod",
        ),
        ({"amqp": {"uri": ""}}, "amqp: set amqp.uri"),
        (
            {"processes": {"catalog": {"replicas": 1, "autoscaling": {"enabled": False}}}},
            "processes.catalog.pdb.minAvailable 1 needs at least 2 replicas (it has 1)",
        ),
        (
            {"defaults": {"autoscaling": {"minReplicas": 1}}},
            "processes.gateway.pdb.minAvailable 1 needs at least 2 replicas (it has 1)",
        ),
        (
            {"defaults": {"pdb": {"minAvailable": "100%"}}},
            "processes.catalog.pdb.minAvailable 100% of 2 replicas keeps all of them (2)",
        ),
        (
            {"processes": {"orders": {"pdb": {"minAvailable": "67%"}}}},
            "processes.orders.pdb.minAvailable 67% of 2 replicas keeps all of them (2)",
        ),
        (
            {
                "processes": {
                    "billing": {
                        "autoscaling": {"enabled": False},
                        "keda": {"enabled": True, "minReplicas": 1},
                    }
                }
            },
            "processes.billing.pdb.minAvailable 1 needs at least 2 replicas (it has 1)",
        ),
        (
            {"processes": {"provisioning": {"credentialKeys": {"value": "k1:not-32-bytes"}}}},
            "processes.provisioning.credentialKeys.value: must be comma-separated key_id:base64-of-32-bytes",
        ),
        (
            {"processes": {"gateway": {"idempotencySecret": {"value": "short"}}}},
            "processes.gateway.idempotencySecret.value: use at least 32 random characters",
        ),
        (
            {"defaults": {"terminationGracePeriodSeconds": 12}},
            "terminationGracePeriodSeconds 12 must exceed preStopSleepSeconds plus settings.rpcTimeoutSeconds (15)",
        ),
        (
            {
                "processes": {
                    "gateway": {"autoscaling": {"enabled": False}, "keda": {"enabled": True}}
                }
            },
            "processes.gateway.keda.enabled: the gateway consumes no queue",
        ),
        (
            {"eventSubscribers": {"queues": [{"queue": "q", "bindings": []}]}},
            "eventSubscribers.queues: q has no bindings",
        ),
    ],
)
def test_bad_combinations_fail_rendering_with_a_clear_message(change, message):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(chart.merged(chart.REQUIRED_VALUES, change))
    assert message in str(failure.value)


@pytest.mark.parametrize("min_available", [0, "0%", "50%", 1])
def test_a_pdb_that_leaves_a_replica_to_evict_is_accepted(min_available):
    values = chart.merged(
        chart.REQUIRED_VALUES, {"defaults": {"pdb": {"minAvailable": min_available}}}
    )
    pdbs = chart.of_kind(chart.manifests(values), "PodDisruptionBudget")
    assert {pdb["spec"]["minAvailable"] for pdb in pdbs.values()} == {min_available}


def test_the_pdb_check_also_reads_integers_as_set_gives_them(tmp_path):
    """A values file gives float64 and `--set defaults.pdb.minAvailable=2` gives int64;
    this renderer passes values as JSON (float64), so a template of a copy of the chart
    runs the check on values holding an int64. (Each process's settings pass through
    toJson/fromJson in "mercato.process", which makes an int64 a float64 again; the
    check no longer depends on that.)"""
    copy = tmp_path / "mercato"
    shutil.copytree(chart.CHART_DIR, copy)
    (copy / "templates" / "zz-int64-values.yaml").write_text(
        "{{- $values := deepCopy .Values }}\n"
        '{{- $_ := set $values.defaults.pdb "minAvailable" (int64 2) }}\n'
        '{{- include "mercato.validateValues" (dict "Values" $values "Release" .Release'
        ' "Chart" .Chart) }}\n'
    )
    with helm.Chart.load(copy) as loaded, pytest.raises(helm.HelmRenderError) as failure:
        loaded.render(chart.REQUIRED_VALUES, name=chart.RELEASE, namespace=chart.NAMESPACE)
    assert "processes.catalog.pdb.minAvailable 2 needs at least 3 replicas (it has 2)" in str(
        failure.value
    )


def test_production_values_allow_keda_for_a_service():
    """KEDA's floor in production matches the HPA's: minAvailable 2 needs 3 replicas."""
    values = chart.merged(
        chart.production_values(),
        {"processes": {"orders": {"autoscaling": {"enabled": False}, "keda": {"enabled": True}}}},
    )
    objects = chart.manifests(values)
    (scaled,) = chart.of_kind(objects, "ScaledObject").values()
    pdb = chart.of_kind(objects, "PodDisruptionBudget")[DEPLOYMENT_NAME["orders"]]
    assert scaled["spec"]["minReplicaCount"] == 3 > pdb["spec"]["minAvailable"]


def test_a_rotated_keyring_of_several_keys_is_accepted():
    keys = "k2027:" + "B" * 43 + "=,k2026:" + "A" * 43 + "="
    values = chart.merged(
        chart.REQUIRED_VALUES, {"processes": {"provisioning": {"credentialKeys": {"value": keys}}}}
    )
    secret = chart.of_kind(chart.manifests(values), "Secret")[chart.RELEASE]
    assert base64.b64decode(secret["data"]["PROVISIONING_CREDENTIAL_KEYS"]).decode() == keys


def test_all_problems_are_reported_at_once():
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render({})
    text = str(failure.value)
    for expected in (
        "amqp:",
        "processes.gateway.idempotencySecret",
        "processes.gateway.objectStore.bucket",
        "processes.provisioning.credentialKeys",
    ):
        assert expected in text
    assert text.count(".database: set url") == len(PROCESSES)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"defaults": {"replicas": "three"}}, "/defaults/replicas"),
        ({"replicaCount": 3}, "additional properties 'replicaCount'"),
        ({"processes": {"order": {}}}, "additional properties 'order'"),
        ({"settings": {"logLevel": "LOUD"}}, "/settings/logLevel"),
        ({"amqp": {"uri": "http://rabbitmq"}}, "/amqp/uri"),
        ({"processes": {"orders": {"database": {"url": 5432}}}}, "/processes/orders/database/url"),
        ({"processes": {"billing": {"sellerEgress": {}}}}, "additional properties 'sellerEgress'"),
        ({"defaults": {"sellerEgress": {}}}, "additional properties 'sellerEgress'"),
        (
            {"processes": {"provisioning": {"sellerEgress": {"ports": []}}}},
            "/processes/provisioning/sellerEgress/ports",
        ),
        (
            {"processes": {"provisioning": {"sellerEgress": {"exceptCidrs": ["10.0.0.0"]}}}},
            "/processes/provisioning/sellerEgress/exceptCidrs/0",
        ),
        (
            {
                "eventSubscribers": {
                    "queues": [
                        {
                            "queue": "rpc-orders",
                            "bindings": [{"exchange": "orders.events", "routing_key": "#"}],
                        }
                    ]
                }
            },
            "/eventSubscribers/queues/0/queue",
        ),
        (
            {
                "eventSubscribers": {
                    "queues": [
                        {"queue": "q", "bindings": [{"exchange": "orders", "routing_key": "#"}]}
                    ]
                }
            },
            "/eventSubscribers/queues/0/bindings/0/exchange",
        ),
    ],
)
def test_the_schema_rejects_bad_types_and_unknown_keys(change, where):
    values = chart.merged(chart.REQUIRED_VALUES, change)
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(values)
    assert where in str(failure.value)
    with helm.Chart.load(chart.CHART_DIR) as loaded, pytest.raises(helm.HelmValuesError):
        loaded.validate_schema(values)


def test_the_schema_accepts_both_shipped_value_files():
    with helm.Chart.load(chart.CHART_DIR) as loaded:
        assert loaded.schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        loaded.validate_schema(chart.REQUIRED_VALUES)
        loaded.validate_schema(chart.production_values())
        loaded.validate_schema(yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text()))


def test_config_paths_come_from_the_topology_the_image_lays_out():
    """The image copies each process's config.yaml: they must be where topology says."""
    for process in PROCESSES:
        loaded = mercato_config.load(process.config_path)
        assert mercato_config.AMQP_URI in loaded and mercato_config.DATABASE_URL in loaded
