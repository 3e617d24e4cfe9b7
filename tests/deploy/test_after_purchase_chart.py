"""The chart's part of the life after the purchase: the alerts on refunds of approved
unsubscriptions, calls to sellers, instance actions and auto-renewals, with their
thresholds from the values."""

import pytest

from tests.deploy import chart

AFTER_PURCHASE_ALERTS = {
    "MercatoUnsubscriptionRefundsLate": "mercato_unsubscription_refund_oldest_approved_seconds",
    "MercatoSellerCallsFailing": "mercato_seller_calls_total",
    "MercatoInstanceActionsStuck": "mercato_instance_action_oldest_pending_seconds",
    "MercatoAutoRenewFailures": "mercato_auto_renew_failures_total",
}


def _rules(values):
    return {rule["alert"]: rule for rule in chart.alert_rules(chart.manifests(values))}


def test_the_after_purchase_alerts_watch_their_metric_in_the_release_namespace(
    production_objects,
):
    rules = {rule["alert"]: rule for rule in chart.alert_rules(production_objects)}
    for alert, metric in AFTER_PURCHASE_ALERTS.items():
        expr = rules[alert]["expr"]
        assert chart.metric_names(expr) == {metric}, alert
        assert f'namespace="{chart.NAMESPACE}"' in expr, alert
    # the promise to buyers: a refund within 3 hours of the approval
    assert "> 10800" in rules["MercatoUnsubscriptionRefundsLate"]["expr"]
    assert rules["MercatoUnsubscriptionRefundsLate"]["labels"]["severity"] == "critical"
    # a seller's answer other than success, per activity
    assert 'result!="000000"' in rules["MercatoSellerCallsFailing"]["expr"]
    assert "by (namespace, service, activity)" in rules["MercatoSellerCallsFailing"]["expr"]
    assert "increase(" in rules["MercatoAutoRenewFailures"]["expr"]


def test_the_after_purchase_thresholds_come_from_the_values():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "unsubscriptionRefundSeconds": 7200,
                    "sellerCallFailureRatio": 0.5,
                    "instanceActionOldestPendingSeconds": 600,
                    "autoRenewFailuresPerHour": 3,
                }
            }
        },
    )
    rules = _rules(values)
    assert rules["MercatoUnsubscriptionRefundsLate"]["expr"].strip().endswith("> 7200")
    assert rules["MercatoSellerCallsFailing"]["expr"].strip().endswith("> 0.5")
    assert rules["MercatoInstanceActionsStuck"]["expr"].strip().endswith("> 600")
    assert rules["MercatoAutoRenewFailures"]["expr"].strip().endswith(">= 3")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"sellerCallFailureRatio": 2}, "/metrics/prometheusRule/sellerCallFailureRatio"),
        ({"autoRenewFailuresPerHour": 0}, "/metrics/prometheusRule/autoRenewFailuresPerHour"),
        ({"unsubscriptionRefundSeconds": 0}, "/metrics/prometheusRule/unsubscriptionRefundSeconds"),
    ],
)
def test_the_schema_refuses_thresholds_that_make_no_sense(change, where):
    import helm_python as helm

    values = chart.merged(chart.REQUIRED_VALUES, {"metrics": {"prometheusRule": change}})
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(values)
    assert where in str(failure.value)
