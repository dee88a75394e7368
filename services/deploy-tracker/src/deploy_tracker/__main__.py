"""``python -m deploy_tracker``: run the service alone against the configured Kafka and MongoDB."""

from deploy_tracker.app import build_app
from deploy_tracker.config import DeployTrackerSettings
from shared.chassis.service import serve

if __name__ == "__main__":
    serve(DeployTrackerSettings, build_app)
