"""Prometheus metrics of the audit service."""

from prometheus_client import Counter, Gauge

AUDITED = Counter("registry_audit_entries_total", "Audit entries appended, by source topic", ["topic"])
CHAIN_LENGTH = Gauge(
    "registry_audit_chain_length", "Entries in the hash chain of a topic-partition", ["topic", "partition"]
)
CHAINS_REFUSED = Counter(
    "registry_audit_chain_refused_total",
    "Batches the audit service refused to chain: the stored head of the topic-partition cannot be trusted",
    ["topic", "partition"],
)
