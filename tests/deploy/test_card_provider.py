"""The card provider billing charges cards through (docs/api.md, "Cards"): its URL and
the payment path's nested budgets reach the processes, a chart whose budgets do not
nest fails rendering, and only billing's pods reach the provider."""

import helm_python as helm
import pytest

from tests.deploy import chart
from tests.deploy.test_chart import (
    DEPLOYMENT_NAME,
    INTERNAL_ADDRESSES,
    PUBLIC_ADDRESSES,
    assert_valid,
    pod_labels,
    reaches,
)


def configmap(values):
    objects = chart.manifests(values)
    assert_valid(objects)
    return chart.of_kind(objects, "ConfigMap")[chart.RELEASE]["data"]


def test_the_budgets_nest_by_default_and_the_url_is_billings_own_default():
    data = configmap(chart.REQUIRED_VALUES)
    assert data["BILLING_CARD_GATEWAY_TIMEOUT_SECONDS"] == "4"
    assert data["ORDERS_BILLING_TIMEOUT_SECONDS"] == "10"
    assert data["GATEWAY_ORDERS_TIMEOUT_SECONDS"] == "15"
    assert "CARD_GATEWAY_URL" not in data


def test_the_providers_url_reaches_the_processes():
    values = chart.merged(
        chart.REQUIRED_VALUES, {"cardProvider": {"url": "https://api.cards.example.com"}}
    )
    assert configmap(values)["CARD_GATEWAY_URL"] == "https://api.cards.example.com"


@pytest.mark.parametrize(
    "change",
    [
        {"cardProvider": {"timeoutSeconds": 6}},  # twice 6 is not under 10
        {"settings": {"ordersBillingTimeoutSeconds": 20}},  # not under the gateway's 15
    ],
)
def test_budgets_that_do_not_nest_fail_rendering_with_a_clear_message(change):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(chart.merged(chart.REQUIRED_VALUES, change))
    assert "timeouts must nest" in str(failure.value)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"cardProvider": {"uri": "https://x"}}, "additional properties 'uri'"),
        ({"cardProvider": {"url": "cards.example.com"}}, "/cardProvider/url"),
        ({"cardProvider": {"timeoutSeconds": 0}}, "/cardProvider/timeoutSeconds"),
        ({"networkPolicy": {"cardProvider": {"ports": []}}}, "/networkPolicy/cardProvider/ports"),
    ],
)
def test_the_schema_rejects_unknown_keys_and_bad_values_under_card_provider(change, where):
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(chart.merged(chart.REQUIRED_VALUES, change))
    assert where in str(failure.value)


def test_only_billing_reaches_the_card_provider_and_never_inside_the_cluster(default_objects):
    policies = list(chart.of_kind(default_objects, "NetworkPolicy").values())
    provider = chart.of_kind(default_objects, "NetworkPolicy")[f"{chart.RELEASE}-card-provider"]
    pods = pod_labels(default_objects)
    billing = pods.pop(DEPLOYMENT_NAME["billing"])
    for address in PUBLIC_ADDRESSES:
        assert reaches([provider], billing, address, 443), address
    for address in INTERNAL_ADDRESSES:
        assert not reaches(policies, billing, address, 443), address
    for name, labels in pods.items():
        assert not reaches([provider], labels, PUBLIC_ADDRESSES[0], 443), name
