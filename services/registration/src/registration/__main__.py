"""``python -m registration``: run the service alone against the configured Kafka and MongoDB."""

from shared.chassis.lean import leave_out_terminal_libraries

if __name__ == "__main__":
    leave_out_terminal_libraries()  # first: before anything imports structlog
    from registration.app import build_app
    from registration.config import RegistrationSettings
    from shared.chassis.service import serve

    serve(RegistrationSettings, build_app)
