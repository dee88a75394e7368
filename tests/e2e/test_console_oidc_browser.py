"""Signing in to the web console through a real OpenID Connect provider, in a real headless Chromium.

The stack trusts the session's provider (``oidc_provider``): its group ``console-people`` signs in
as team ``oidc-people``, and the console offers "Sign in with Test IdP". Each step saves a
screenshot under ``test-results/console/``; the console's pages must keep to their
Content-Security-Policy (a violation is logged by Chromium, and fails the test).
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from registry_cli.stack import EmbeddedStack
from tests.browser import screenshot
from tests.e2e.console_tools import new_team
from tests.factories import ADMIN_KEY
from tests.http_tools import acting_as, register
from tests.oidc_provider import CONSOLE_GROUP, PEOPLE_TEAM, OidcProvider
from tests.waiting import until

pytestmark = pytest.mark.e2e
NO_RULE = "no rule of the platform gives this account access to the registry: ask a platform admin"


# A page this test means to be refused (401, 404) is reported as a resource that failed to load.
REFUSED_PAGE = "Failed to load resource: the server responded with a status of"


def _watch_console(page: Page, origin: str) -> list[str]:
    """Errors and warnings Chromium logs for the console's pages (the provider's own pages are not ours)."""
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        ours = message.location.get("url", "").startswith(origin)
        if message.type in ("error", "warning") and ours and not message.text.startswith(REFUSED_PAGE):
            messages.append(message.text)

    page.on("console", keep)
    return messages


async def _seed(stack: EmbeddedStack) -> tuple[str, str, str]:
    """A model of ``oidc-people`` (registered by the platform admin) and one of another team, both readable."""
    suffix = uuid.uuid4().hex[:8]
    ours, theirs = f"people-scorer-{suffix}", f"hidden-scorer-{suffix}"
    other_team, other_key = await new_team(stack, "elsewhere")
    await register(stack, ADMIN_KEY.token, PEOPLE_TEAM, ours, description=f"scores people {suffix}")
    await register(stack, other_key, other_team, theirs, description=f"scores others {suffix}")

    async def readable() -> bool:
        async with acting_as(stack, "query", other_key) as http:
            return (await http.get(f"/v1/models/{other_team}/{theirs}")).status_code == 200

    # The other team's model is in the read model: not finding it in the console proves isolation.
    await until(readable, timeout=30, what="the other team's model in the read model")
    return ours, f"{other_team}/{theirs}", suffix


async def _through_the_provider(page: Page, provider: OidcProvider, sub: str, *, shot: str | None = None) -> None:
    """Follow the sign-in link, and sign in as ``sub`` on the provider's authorization page."""
    await page.get_by_role("link", name="Sign in with Test IdP").click()
    await expect(page).to_have_url(re.compile(re.escape(provider.issuer) + r"/oauth2/authorize\?"))
    await expect(page.get_by_placeholder("sub")).to_be_visible()
    if shot:
        await screenshot(page, shot)
    await page.get_by_placeholder("sub").fill(sub)
    await page.get_by_role("button", name="Authorize", exact=True).click()


async def test_a_person_signs_in_through_the_provider_and_sees_their_teams_models(
    stack: EmbeddedStack, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    page, console = browser_page, stack.url("query")
    problems = _watch_console(page, console)
    await oidc_provider.set_user(
        "alice@example.com", {"email": "alice@example.com", "name": "Alice", "groups": [CONSOLE_GROUP]}
    )
    ours, theirs, suffix = await _seed(stack)

    await page.goto(f"{console}/console/sign-in?next=/console/search%3Fq%3D{suffix}")
    await expect(page.get_by_role("link", name="Sign in with Test IdP")).to_be_visible()
    await screenshot(page, "oidc-01-sign-in")

    await _through_the_provider(page, oidc_provider, "alice@example.com", shot="oidc-02-provider")
    await expect(page).to_have_url(re.compile(rf"/console/search\?q={suffix}$"), timeout=15_000)
    await expect(page.locator(".who")).to_contain_text(f"Alice · {PEOPLE_TEAM}")
    await expect(page.get_by_role("link", name=f"{PEOPLE_TEAM}/{ours}")).to_be_visible(timeout=15_000)
    await expect(page.locator("main")).not_to_contain_text(theirs)
    await screenshot(page, "oidc-03-signed-in")

    # Another team's model is the same 404 page as one that does not exist.
    hidden = await page.goto(f"{console}/console/models/{theirs}")
    assert hidden is not None and hidden.status == 404

    # Sign-out works as for a key: the session ends here (the provider's own session does not).
    await page.goto(f"{console}/console/search")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    await page.goto(f"{console}/console/search")
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    assert problems == [], problems


async def test_a_person_no_rule_admits_is_told_to_ask_a_platform_admin(
    stack: EmbeddedStack, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    page, console = browser_page, stack.url("query")
    problems = _watch_console(page, console)
    await oidc_provider.set_user("bob@example.com", {"email": "bob@example.com", "name": "Bob", "groups": ["sales"]})

    await page.goto(f"{console}/console/sign-in")
    await _through_the_provider(page, oidc_provider, "bob@example.com")
    await expect(page).to_have_url(re.compile(r"/console/sign-in/oidc/callback\?"))
    await expect(page.locator(".flash.problem")).to_contain_text(NO_RULE)
    await expect(page.get_by_role("link", name="Sign in with Test IdP")).to_be_visible()
    await screenshot(page, "oidc-04-refused")

    await page.goto(f"{console}/console/search")  # no session was opened
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    assert problems == [], problems
