import hashlib
import hmac

import pytest

from deploy_tracker.webhook_targets import TargetRefused, check_target
from deploy_tracker.webhooks import sign

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://192.168.0.10/x",
        "http://localhost/hook",
        "ftp://example/x",
        "http://u:p@8.8.8.8/",
    ],
)
async def test_internal_or_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_public_addresses_pass_and_private_ones_pass_when_allowed() -> None:
    await check_target("https://8.8.8.8/hook", allow_private=False)
    await check_target("http://127.0.0.1:9/hook", allow_private=True)


def test_the_signature_is_an_hmac_of_the_exact_body() -> None:
    expected = hmac.new(b"s3cret", b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign("s3cret", b'{"a":1}') == f"sha256={expected}"
