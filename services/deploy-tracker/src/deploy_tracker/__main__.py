"""``python -m deploy_tracker``: run the service alone against the configured Kafka and MongoDB."""

from shared.chassis.lean import leave_out_terminal_libraries

if __name__ == "__main__":
    leave_out_terminal_libraries()  # first: before anything imports structlog
    from deploy_tracker.app import build_app
    from deploy_tracker.config import DeployTrackerSettings
    from shared.chassis.service import serve

    serve(DeployTrackerSettings, build_app)
