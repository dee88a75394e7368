"""Sealing webhook secrets: what is stored opens only with a listed key, and rotation re-seals."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from deploy_tracker.secret_box import SEALED, SecretBox
from deploy_tracker.webhook_secrets import new_secret
from shared.chassis.settings import ConfigurationError

pytestmark = pytest.mark.unit

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_sealed_secret_opens_to_itself_and_does_not_contain_it() -> None:
    box, secret = SecretBox([NEW]), new_secret()
    stored = box.seal(secret)
    assert stored.startswith(SEALED)
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert box.open(stored) == secret
    assert box.seal(secret) != stored  # a fresh IV each time: equal secrets are not told apart


def test_after_rotation_old_seals_open_but_are_not_current() -> None:
    before, after = SecretBox([OLD]), SecretBox([NEW, OLD])
    stored = before.seal("whsec_x")
    assert after.open(stored) == "whsec_x"
    assert not after.is_current(stored)
    assert after.is_current(after.seal("whsec_x"))
    assert SecretBox([NEW]).is_current(after.seal("whsec_x"))  # sealed under the newest key only


def test_a_seal_no_listed_key_opens_is_refused() -> None:
    stored = SecretBox([OLD]).seal("whsec_x")
    with pytest.raises(InvalidToken):
        SecretBox([NEW]).open(stored)


def test_values_stored_before_sealing_are_used_as_they_are_and_are_never_current() -> None:
    box = SecretBox([NEW])
    assert box.open("whsec_plain") == "whsec_plain"
    assert not box.is_current("whsec_plain")


@pytest.mark.parametrize("setting", [None, "", " , ", "not-a-fernet-key", f"{NEW},short"])
def test_a_missing_or_malformed_key_setting_stops_the_service(setting: str | None) -> None:
    with pytest.raises(ConfigurationError):
        SecretBox.from_setting(SecretStr(setting) if setting is not None else None)


def test_the_setting_lists_keys_newest_first() -> None:
    box = SecretBox.from_setting(SecretStr(f" {NEW} , {OLD} "))
    assert SecretBox([NEW]).open(box.seal("whsec_x")) == "whsec_x"


def test_open_each_keeps_the_secrets_that_open_and_leaves_out_the_rest() -> None:
    # One unreadable secret (the previous one, sealed under a dropped key) must not fail every
    # delivery once the team has rotated to a new secret.
    box = SecretBox([NEW])
    readable, lost = box.seal("whsec_new"), SecretBox([OLD]).seal("whsec_old")
    assert box.open_each([readable, lost, "whsec_plain"]) == ["whsec_new", "whsec_plain"]
    assert box.open_each([lost]) == []
