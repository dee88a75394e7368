import asyncio
import socket
from typing import Any

import pytest

from deploy_tracker.webhook_targets import TargetRefused, check_target, system_resolver, vet

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
        # Shared address space (and a cloud metadata address in it), and loopback or metadata hidden
        # in IPv6 forms.
        "http://100.64.0.1/hook",
        "http://100.100.100.200/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://0.0.0.0/hook",
        "http://[fd00::1]/hook",
        "http://198.18.0.1/hook",
        "http://8.8.8.8:99999/hook",
        # NAT64 local-use, site-local, IPv4-compatible (even of a public address) and IPv4-translated
        # forms.
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[64:ff9b:1::808:808]/hook",
        "http://[fec0::1]/hook",
        "http://[::10.0.0.1]/hook",
        "http://[::8.8.8.8]/hook",
        "http://[::ffff:0:a00:1]/hook",
        # Python's is_global still calls these global: documentation (RFC 9637) and SRv6 SIDs (RFC 9602).
        "http://[3fff::1]/hook",
        "http://[3fff:fff:ffff::1]/hook",
        "http://[5f00::1]/hook",
        "http://[5f00:ffff::1]/hook",
    ],
)
async def test_targets_that_are_not_public_or_malformed_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_public_addresses_pass_and_private_ones_pass_when_allowed() -> None:
    await check_target("https://8.8.8.8/hook", allow_private=False)
    await check_target("https://[2606:4700::1111]/hook", allow_private=False)
    await check_target("http://127.0.0.1:9/hook", allow_private=True)


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "127.0.0.1"]

    with pytest.raises(TargetRefused):
        await vet("https://hooks.example.com/x", allow_private=False, resolver=resolver)


async def test_the_connection_goes_to_the_vetted_address_with_the_name_kept_for_host_and_tls() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    target = await vet("https://hooks.example.com:8443/in?x=1", allow_private=False, resolver=resolver)
    assert target.url == "https://93.184.216.34:8443/in?x=1"
    assert (target.host_header, target.hostname) == ("hooks.example.com:8443", "hooks.example.com")


async def test_a_resolver_that_hangs_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def slow(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "slow.example":  # only this host hangs
            return real(host, *args, **kwargs)
        import time

        time.sleep(1.0)
        return []

    async def resolve() -> float:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TargetRefused):
            await system_resolver("slow.example", 443, timeout=0.2)
        return asyncio.get_running_loop().time() - started

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    # On an event loop of its own: the session's loop can stall for a second (another test's
    # leftover task printing a traceback), and a time-out that fires late may find the lookup done.
    elapsed = await asyncio.to_thread(asyncio.run, resolve())
    assert elapsed < 0.9
