"""One prefix per consumer: the stack reads REGISTRY_STACK_* (and the earlier REGISTRY_*), the client its own."""

import os
from pathlib import Path

import pytest

from registry_cli.config import StackSettings
from registry_client.config import API_KEY_ENV, GATEWAY_URL_ENV, URL_ENVS
from registry_client.consistency import CONSISTENCY_ENV

pytestmark = pytest.mark.unit
CLIENT = {API_KEY_ENV, GATEWAY_URL_ENV, CONSISTENCY_ENV, *URL_ENVS.values()}


@pytest.fixture(autouse=True)
def no_stack_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)


def test_the_stack_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_STACK_DATA_DIR", "/srv/stack")
    monkeypatch.setenv("REGISTRY_STACK_TLS", "true")
    settings = StackSettings()
    assert settings.data_dir == Path("/srv/stack") and settings.tls


def test_the_earlier_names_still_work_and_the_new_one_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_DATA_DIR", "/srv/old")
    monkeypatch.setenv("REGISTRY_KAFKA_PORT", "19092")
    monkeypatch.setenv("REGISTRY_STACK_KAFKA_PORT", "29092")
    settings = StackSettings()
    assert settings.data_dir == Path("/srv/old") and settings.kafka_port == 29092


def test_messages_name_the_new_variable() -> None:
    assert StackSettings.env_name("mongo_port") == "REGISTRY_STACK_MONGO_PORT"


def test_no_stack_setting_answers_to_a_client_variable() -> None:
    for field in StackSettings.model_fields:
        alias = StackSettings.model_fields[field].validation_alias
        assert not {str(choice).upper() for choice in getattr(alias, "choices", [])} & CLIENT, field
