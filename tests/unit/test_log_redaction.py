import pytest

from registry_contract.auth import generate_api_key
from shared.chassis.logs import redact_secrets
from shared.chassis.metrics import record_type

pytestmark = pytest.mark.unit


def test_secret_fields_and_key_shaped_text_are_redacted() -> None:
    key = generate_api_key().token
    event = {"event": f"refused {key} at the door", "authorization": f"Bearer {key}", "Secret": "s3cr3t", "team": "a"}
    redacted = redact_secrets(None, "info", dict(event))
    assert key not in str(redacted) and "s3cr3t" not in str(redacted)
    assert redacted["team"] == "a" and redacted["event"].startswith("refused mr_[redacted]")


class _Record:
    def __init__(self, headers: list[tuple[str, bytes]]) -> None:
        self.headers = headers


def test_only_contract_types_become_label_values() -> None:
    assert record_type(_Record([("ce_type", b"registry.command.register_model_version")])) == (
        "registry.command.register_model_version"
    )
    assert record_type(_Record([("ce_type", b"anything-a-sender-likes")])) == "other"
    assert record_type(_Record([])) == "other"
