"""What a setting means, where its field has no description and no comment of its own.

A comment right above a field is used first (a field ``description`` before it); these fill the
gaps, and replace a comment that is a heading over several fields. Keys are the variables.
"""

# Settings without which a service refuses to start, though their fields default to nothing.
REQUIRED = {
    "EVENT_SIGNING_KEY": "every service",
    "AUDIT_SIGNING_KEY": "the audit service",
    "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS": "the deploy-tracker",
}

NOTES: dict[str, str] = {
    # Every service: Kafka.
    "KAFKA_BOOTSTRAP_SERVERS": "the brokers, comma-separated `host:port`",
    "KAFKA_SECURITY_PROTOCOL": "how to reach the brokers; a SASL protocol needs `KAFKA_SASL_MECHANISM`",
    "KAFKA_SASL_MECHANISM": "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, with a SASL protocol",
    "KAFKA_SASL_USERNAME": "the SASL user",
    "KAFKA_SASL_PASSWORD": "the SASL user's password",
    "KAFKA_SSL_CAFILE": "TLS to the brokers: the CA that signed them (unset: the system's CAs)",
    "KAFKA_SSL_CERTFILE": "TLS to the brokers: this client's certificate, for mutual TLS",
    "KAFKA_SSL_KEYFILE": "TLS to the brokers: the client certificate's private key",
    "KAFKA_SSL_KEY_PASSWORD": "the password of that private key, if it has one",
    "KAFKA_ENABLE_IDEMPOTENCE": (
        "idempotent producer; the embedded broker cannot initialise producer ids and needs `false`"
    ),
    "KAFKA_SESSION_TIMEOUT_MS": "consumer group session time-out (a dead consumer's partitions move after it)",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "how often consumers tell their group they are alive",
    "KAFKA_FETCH_MAX_WAIT_MS": "how long the broker may hold a fetch that has nothing yet",
    "TOPIC_COMMANDS": "the commands topic",
    "TOPIC_EVENTS": "the domain events topic, where every command's outcome appears",
    "TOPIC_DEPLOY": "the deployment reports topic",
    "TOPIC_ACCESS": "the access and security events topic",
    # Every service: MongoDB, secrets, HTTP.
    "MONGODB_URI": (
        "MongoDB 8.0 or later (registration writes with its bulkWrite command); a replica set (transactions)"
        " is required. In production each service gets its own,"
        ' with its own user (see operations, "Where the data lives")'
    ),
    "EVENT_SIGNING_KEY": (
        "the secret every service signs its records with, the same everywhere; rotation keeps the"
        " old one as `EVENT_SIGNING_PREVIOUS_KEY`"
    ),
    "EVENT_SIGNING_PREVIOUS_KEY": "the signing key before a rotation, accepted until every service has the new one",
    "RATE_LIMIT_PER_SECOND": "per-key token bucket on every HTTP service: the rate; over it, 429 with `Retry-After`",
    "RATE_LIMIT_BURST": (
        "per-key token bucket: the burst. Buckets live in each process: with N replicas a key can reach N times"
        " the rate"
    ),
    "KEY_CACHE_SECONDS": (
        "how long a service trusts what it learnt of a key, refusals too (registration: its database; the"
        " others: registration's introspection); a revocation's event evicts it sooner"
    ),
    "AUTH_FAILURE_THRESHOLD": "failures of one key id or client address within the window that log a warning",
    "AUTH_FAILURE_WINDOW_SECONDS": "the window of `AUTH_FAILURE_THRESHOLD`",
    "CONSUMER_MAX_ATTEMPTS": (
        "tries before a record that keeps failing is dead-lettered (the rest of its batch is applied)"
    ),
    "CONSUMER_BACKOFF_SECONDS": "first pause before a batch that failed on a dependency (MongoDB, Kafka) is retried",
    "CONSUMER_BACKOFF_MAX_SECONDS": "the longest such pause (it doubles from `CONSUMER_BACKOFF_SECONDS`)",
    "BACKGROUND_TASK_RESTART_SECONDS": "a background task that dies is restarted after a pause doubling from this",
    "BACKGROUND_TASK_RESTART_MAX_SECONDS": "... up to this",
    "BACKGROUND_TASK_SETTLE_SECONDS": (
        "a restarted task counts as up (`/readyz`, `registry_background_task_up`) once it has run this long;"
        " the pauses then start afresh"
    ),
    "MAX_BODY_BYTES": "HTTP request bodies over this get 413 before they are parsed (the Kafka payload cap)",
    "HTTP_TLS_CERT_FILE": "the service serves HTTPS itself: its PEM certificate chain",
    "HTTP_TLS_KEY_FILE": "... and its private key",
    "LOG_FORMAT": "`json`, `console`, or `auto` (console on a terminal, JSON lines otherwise)",
    "LOG_LEVEL": "writes, denials and 5xx are logged at `INFO`, other reads at `DEBUG`",
    # Each service, with its prefix.
    "REGISTRATION_SERVICE_NAME": "the name in logs, Kafka client ids and the MongoDB app name; leave it",
    "QUERY_SERVICE_NAME": "the name in logs, Kafka client ids and the MongoDB app name; leave it",
    "DEPLOY_TRACKER_SERVICE_NAME": "the name in logs, Kafka client ids and the MongoDB app name; leave it",
    "AUDIT_SERVICE_NAME": "the name in logs, Kafka client ids and the MongoDB app name; leave it",
    "SERVICE_NAME": "the init job's name in its logs and Kafka client id",
    "REGISTRATION_HTTP_HOST": "the address the HTTP API listens on",
    "QUERY_HTTP_HOST": "the address the HTTP API listens on",
    "DEPLOY_TRACKER_HTTP_HOST": "the address the HTTP API listens on",
    "AUDIT_HTTP_HOST": "the address the HTTP API listens on",
    "REGISTRATION_HTTP_PORT": "the HTTP API's port",
    "QUERY_HTTP_PORT": "the HTTP API's port",
    "DEPLOY_TRACKER_HTTP_PORT": "the HTTP API's port",
    "AUDIT_HTTP_PORT": "the HTTP API's port",
    "REGISTRATION_CONSUMER_GROUP": "the consumer group of `registry.commands`",
    "DEPLOY_TRACKER_CONSUMER_GROUP": "the consumer group of `deploy.events`",
    "AUDIT_CONSUMER_GROUP": "the consumer group of every topic",
    "REGISTRATION_BATCH_MAX_RECORDS": "records per consumed batch (one MongoDB transaction)",
    "DEPLOY_TRACKER_BATCH_MAX_RECORDS": "records per consumed batch",
    "AUDIT_BATCH_MAX_RECORDS": "records per consumed batch (one transaction moving its chains' heads)",
    "REGISTRATION_BATCH_TIMEOUT_MS": "how long a consumer waits to fill a batch",
    "DEPLOY_TRACKER_BATCH_TIMEOUT_MS": "how long a consumer waits to fill a batch",
    "AUDIT_BATCH_TIMEOUT_MS": "how long a consumer waits to fill a batch",
    "REGISTRATION_RELAY_INTERVAL_SECONDS": "the outbox relay looks for new rows at least this often",
    "DEPLOY_TRACKER_RELAY_INTERVAL_SECONDS": "the outbox relay looks for new rows at least this often",
    "REGISTRATION_RELAY_BATCH_SIZE": "outbox rows the relay publishes per round",
    "DEPLOY_TRACKER_RELAY_BATCH_SIZE": "outbox rows the relay publishes per round",
    "REGISTRATION_ARTIFACT_SCHEMES": 'accepted artifact URI schemes, e.g. `["s3","gs"]`',
    "REGISTRATION_COMMIT_RETRIES": (
        "how often a batch of commands is re-run after a concurrent write (a duplicate, a redelivery),"
        " reading what it collides with"
    ),
    "REGISTRATION_COMMAND_RATE_PER_SECOND": (
        "per-key rate of Kafka commands; over it, `command_rejected` `rate_limited`"
    ),
    "REGISTRATION_COMMAND_BURST": "per-key burst of Kafka commands",
    "DEPLOY_TRACKER_VERSION_LOOKUP_TIMEOUT_SECONDS": (
        "how long the tracker waits for registration's answer about a version it does not know yet (the batch"
        " of reports waits with it)"
    ),
    "DEPLOY_TRACKER_VERSION_LOOKUP_FORGET_SECONDS": (
        "how long a version registration did not know (or could not be asked about) is not asked about again"
    ),
    "DEPLOY_TRACKER_REPORT_WAIT_MAX_SECONDS": "`Prefer: wait=<s>` on the HTTP bridge: the longest wait granted",
    "DEPLOY_TRACKER_REPORT_WAIT_CONCURRENCY": (
        "requests that may wait at once per replica; past that a request gets its 202 at once"
    ),
    "DEPLOY_TRACKER_WEBHOOK_GROUP": "the consumer group that turns events into webhook deliveries",
    "DEPLOY_TRACKER_WEBHOOK_MAX_ATTEMPTS": (
        "attempts of a delivery before it is `dead` (a subscription may set its own)"
    ),
    "DEPLOY_TRACKER_WEBHOOK_BACKOFF_SECONDS": "first pause between attempts (exponential, with jitter)",
    "DEPLOY_TRACKER_WEBHOOK_BACKOFF_MAX_SECONDS": "the longest pause between attempts",
    "DEPLOY_TRACKER_WEBHOOK_TIMEOUT_SECONDS": "time-out of one delivery attempt",
    "DEPLOY_TRACKER_WEBHOOK_CONCURRENCY": "deliveries in flight at once per replica",
    "DEPLOY_TRACKER_WEBHOOK_DNS_TIMEOUT_SECONDS": "time-out of resolving a webhook's host (once per attempt)",
    "DEPLOY_TRACKER_WEBHOOK_RECOVERY_SECONDS": (
        "how often overdue, unleased deliveries (their process died) are queued again"
    ),
    "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS": (
        "Fernet keys, comma-separated, newest first, sealing stored webhook secrets (rotation: operations,"
        ' "Secrets at rest")'
    ),
    # The init job.
    "KAFKA_TOPIC_PARTITIONS": "partitions of each topic it creates (and of its `.dlq` twin)",
    "KAFKA_REPLICATION_FACTOR": "replication factor of the topics it creates",
    "BOOTSTRAP_ADMIN_KEY": (
        "a `platform:admin` key (`mr_<8 chars>_<secret>`, a random secret) to store if absent; never"
        " re-enables a revoked key"
    ),
    # The local stack.
    "REGISTRY_STACK_HOST": "the address every process of the stack listens on",
    "REGISTRY_STACK_KAFKA_PORT": "the embedded broker's port",
    "REGISTRY_STACK_MONGO_PORT": "the shared database server's port",
    "REGISTRY_STACK_QUERY_PORT": "the query service's port",
    "REGISTRY_STACK_REGISTRATION_PORT": "the registration service's port",
    "REGISTRY_STACK_DEPLOY_TRACKER_PORT": "the deploy-tracker's port",
    "REGISTRY_STACK_AUDIT_PORT": "the audit service's port",
    "REGISTRY_STACK_DATA_DIR": "the data directory: both databases, logs, secrets, certificates",
    "REGISTRY_STACK_PARTITIONS": "partitions of each topic the stack creates",
    "REGISTRY_STACK_BOOTSTRAP_ADMIN_KEY": (
        "`mr_<8 chars>_<secret>`: the bootstrap key instead of a generated one, for scripted set-ups (a"
        " low-entropy secret such as `aaaa…` is refused)"
    ),
    "REGISTRY_STACK_SESSION_TIMEOUT_MS": (
        "the services' consumer group timings, shorter than Kafka's defaults: a join takes ~5 s otherwise on the"
        " embedded broker, and a restarted service waits out its old session"
    ),
    "REGISTRY_STACK_HEARTBEAT_INTERVAL_MS": "the services' consumer heartbeat",
    "REGISTRY_STACK_FETCH_MAX_WAIT_MS": "the services' fetch wait",
    "REGISTRY_STACK_FETCH_IDLE_MAX_WAIT_MS": (
        "how long a quiet consumer's fetch wait may grow (the services' `KAFKA_FETCH_IDLE_MAX_WAIT_MS`): the "
        "embedded broker answers a fetch only once its wait is over, so the first event after a quiet spell is "
        "read up to this much later; 0 leaves every consumer at its own configured wait"
    ),
    "REGISTRY_STACK_LOG_FORMAT": "the services' log format (`json`, `console` or `auto`)",
    "REGISTRY_STACK_PROMETHEUS_PORT": "`registry up --with-prometheus` (`make observe`): Prometheus's port",
    "REGISTRY_STACK_PROMETHEUS_SCRAPE_INTERVAL": "how often that Prometheus scrapes the services",
    "REGISTRY_STACK_ALERTMANAGER_PORT": "Alertmanager's port, beside that Prometheus",
    "REGISTRY_STACK_ALERT_WEBHOOK_URL": (
        "every Alertmanager receiver posts to `<url>/<receiver>` (unset: alerts show only in its UI)"
    ),
    "REGISTRY_STACK_GATEWAY_PORT": "`registry up --with-gateway`: the HTTPS entry point's port",
    "REGISTRY_STACK_TLS_FRONT_MAX_CONNECTIONS": (
        "with `--tls`, connections each TLS front holds at once (more are closed before their handshake)"
    ),
    "REGISTRY_STACK_TLS_FRONT_IDLE_SECONDS": (
        "with `--tls`, how long a connection may carry nothing before its front closes it"
    ),
}
