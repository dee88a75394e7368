"""``python -m query``: run the service alone against the configured Kafka and MongoDB."""

from shared.chassis.lean import leave_out_terminal_libraries

if __name__ == "__main__":
    leave_out_terminal_libraries()  # first: before anything imports structlog
    from query.app import build_app
    from query.config import QuerySettings
    from shared.chassis.service import serve

    serve(QuerySettings, build_app)
