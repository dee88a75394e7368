"""``python -m audit``: run the service alone against the configured Kafka and MongoDB."""

from shared.chassis.lean import leave_out_terminal_libraries

if __name__ == "__main__":
    leave_out_terminal_libraries()  # first: before anything imports structlog
    from audit.app import build_app
    from audit.config import AuditSettings
    from shared.chassis.service import serve

    serve(AuditSettings, build_app)
