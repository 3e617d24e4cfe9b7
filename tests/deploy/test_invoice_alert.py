"""The chart's alert on invoices billing cannot issue: failed attempts while invoices
wait, with its threshold from the values."""

from tests.deploy import chart


def _rule(values):
    (rule,) = [
        rule
        for rule in chart.alert_rules(chart.manifests(values))
        if rule["alert"] == "MercatoInvoicesNotIssued"
    ]
    return rule


def test_the_invoice_alert_needs_failures_and_waiting_invoices_in_the_release_namespace(
    production_objects,
):
    (rule,) = [
        rule
        for rule in chart.alert_rules(production_objects)
        if rule["alert"] == "MercatoInvoicesNotIssued"
    ]
    expr = rule["expr"]
    assert chart.metric_names(expr) == {
        "mercato_invoice_issue_failures_total",
        "mercato_invoices_pending",
    }
    assert expr.count(f'namespace="{chart.NAMESPACE}"') == 2
    assert "increase(mercato_invoice_issue_failures_total" in expr and ">= 3" in expr
    assert "\nand on (namespace, service)\n" in expr
    assert rule["annotations"]["runbook"] == "docs/operations.md#mercatoinvoicesnotissued"


def test_the_invoice_alerts_threshold_comes_from_the_values():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {"metrics": {"prometheusRule": {"enabled": True, "invoiceIssueFailuresPer30m": 7}}},
    )
    assert ">= 7" in _rule(values)["expr"]
