"""``python -m registration``: run the service alone against the configured Kafka and MongoDB."""

from registration.app import build_app
from registration.config import RegistrationSettings
from shared.chassis.service import serve

if __name__ == "__main__":
    serve(RegistrationSettings, build_app)
