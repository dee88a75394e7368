"""Prometheus metrics of the deploy-tracker service."""

from prometheus_client import Counter

REPORTS = Counter(
    "registry_deploy_reports_total",
    "Deployment reports recorded, by outcome (applied, out_of_order, rejected) and reject reason",
    ["outcome", "reason"],
)
UNSIGNED_EVENTS = Counter(
    "registry_unsigned_events_total", "Records on registry.events without a valid service signature: not sent on"
)
DELIVERIES = Counter("registry_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"])
