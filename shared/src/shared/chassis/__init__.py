"""The service chassis: HTTP app, auth, health, metrics, logging, Kafka, MongoDB."""
