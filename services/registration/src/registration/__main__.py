"""``python -m registration``: run the service alone against the configured Kafka and MongoDB."""

from shared.service import serve

from registration.app import build_app
from registration.config import RegistrationSettings

if __name__ == "__main__":
    serve(RegistrationSettings, build_app)
