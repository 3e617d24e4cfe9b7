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


# -- the settings of the life after the purchase ----------------------------------------

SETTINGS = {
    "orders": {
        "SUBSCRIPTION_GRACE_DAYS": ("subscriptions", "graceDays", "15"),
        "SUBSCRIPTION_RETENTION_DAYS": ("subscriptions", "retentionDays", "15"),
        "SUBSCRIPTION_SWEEP_SECONDS": ("subscriptions", "sweepSeconds", "5"),
        "RENEWAL_QUOTE_VALID_MINUTES": ("subscriptions", "renewalQuoteValidMinutes", "30"),
        "UPGRADE_QUOTE_VALID_MINUTES": ("subscriptions", "upgradeQuoteValidMinutes", "30"),
    },
    "provisioning": {
        "INSTANCE_ACTION_SWEEP_SECONDS": ("instanceActions", "sweepSeconds", "2"),
        "INSTANCE_ACTION_RETRY_SECONDS": ("instanceActions", "retrySeconds", "30"),
        "INSTANCE_ACTION_RETRY_MAX_SECONDS": ("instanceActions", "retryMaxSeconds", "3600"),
    },
}


def _env(objects, process: str) -> dict[str, str | None]:
    deployment = chart.of_kind(objects, "Deployment")[f"{chart.RELEASE}-{process}"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_settings_are_in_the_environment_of_the_process_that_reads_them(default_objects):
    for process, settings in SETTINGS.items():
        env = _env(default_objects, process)
        for name, (_block, _key, default) in settings.items():
            assert env[name] == default, (process, name)
    # nobody else gets them
    names = {name for settings in SETTINGS.values() for name in settings}
    assert not names & set(_env(default_objects, "catalog"))
    config_map = chart.of_kind(default_objects, "ConfigMap")[chart.RELEASE]["data"]
    assert not names & set(config_map)


@pytest.mark.parametrize("process", sorted(SETTINGS))
def test_each_setting_the_chart_passes_is_read_from_that_variable_by_the_config(process):
    """The variable must be the one the process's config.yaml reads (``${NAME:…}``),
    not only a name its code mentions: nameko's config holds nothing else."""
    from mercato.topology import BY_NAME

    config_text = BY_NAME[process].config_path.read_text()
    for name in SETTINGS[process]:
        assert f"${{{name}:" in config_text, f"{process}'s config.yaml does not read {name}"


def test_the_values_change_them_and_null_keeps_the_process_default():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "subscriptions": {"graceDays": 7, "retentionDays": None, "sweepSeconds": 2.5},
            "instanceActions": {"retryMaxSeconds": 600},
            "processes": {"orders": {"env": {"SUBSCRIPTION_SWEEP_SECONDS": "10"}}},
        },
    )
    objects = chart.manifests(values)
    orders = _env(objects, "orders")
    assert orders["SUBSCRIPTION_GRACE_DAYS"] == "7"
    assert "SUBSCRIPTION_RETENTION_DAYS" not in orders
    # a process's own env wins, once
    assert orders["SUBSCRIPTION_SWEEP_SECONDS"] == "10"
    deployment = chart.of_kind(objects, "Deployment")[f"{chart.RELEASE}-orders"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [e["name"] for e in container["env"]].count("SUBSCRIPTION_SWEEP_SECONDS") == 1
    assert _env(objects, "provisioning")["INSTANCE_ACTION_RETRY_MAX_SECONDS"] == "600"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {"subscriptions": {"renewalQuoteValidMinutes": 10}},
            "/subscriptions/renewalQuoteValidMinutes",
        ),
        ({"subscriptions": {"graceDays": "two weeks"}}, "/subscriptions/graceDays"),
        ({"subscriptions": {"graceDay": 15}}, "additional properties 'graceDay'"),
        ({"instanceActions": {"retrySeconds": 0}}, "/instanceActions/retrySeconds"),
    ],
)
def test_the_schema_refuses_bad_settings(change, where):
    import helm_python as helm

    values = chart.merged(chart.REQUIRED_VALUES, change)
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(values)
    assert where in str(failure.value)
