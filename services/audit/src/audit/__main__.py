"""``python -m audit``: run the service alone against the configured Kafka and MongoDB."""

from audit.app import build_app
from audit.config import AuditSettings
from shared.chassis.service import serve

if __name__ == "__main__":
    serve(AuditSettings, build_app)
