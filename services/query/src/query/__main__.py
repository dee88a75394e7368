"""``python -m query``: run the service alone against the configured Kafka and MongoDB."""

from query.app import build_app
from query.config import QuerySettings
from shared.chassis.service import serve

if __name__ == "__main__":
    serve(QuerySettings, build_app)
