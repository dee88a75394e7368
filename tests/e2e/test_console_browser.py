"""The web console in a real headless Chromium: sign in, search, open a model, approve, move an alias, sign out.

Each step saves a screenshot under ``test-results/console/``; the page must also keep to its
Content-Security-Policy (Chromium reports any violation on the console, which fails the test).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from registry_cli.stack import EmbeddedStack
from tests.browser import screenshot
from tests.e2e.console_tools import new_team
from tests.http_tools import acting_as, register
from tests.waiting import until

pytestmark = pytest.mark.e2e


def _watch_console(page: Page) -> list[str]:
    """Messages Chromium logs for the page: a blocked script or style shows up here."""
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            messages.append(message.text)

    page.on("console", keep)
    return messages


async def _seed(stack: EmbeddedStack) -> tuple[str, str]:
    team, key = await new_team(stack, "web")
    await register(stack, key, team, "payment-scorer", "1.0.0", metrics={"auc": 0.91, "latency_ms": 14})
    await register(
        stack, key, team, "payment-scorer", "1.1.0", metrics={"auc": 0.94, "latency_ms": 11}, tags={"owner": "alice"}
    )
    async with acting_as(stack, "registration", key) as http:
        answer = await http.patch(
            f"/v1/models/{team}/payment-scorer",
            json={
                "description": "Scores card payments for fraud",
                "documentation": "## Intended use\n\nCard-not-present payments, **EU only**.",
                "owners": [{"name": "Alice", "email": "alice@example.com"}],
            },
        )
        assert answer.status_code == 200
        aliased = await http.put(f"/v1/models/{team}/payment-scorer/aliases/champion", json={"version": "1.0.0"})
        assert aliased.status_code == 200
    return team, key


async def _sign_in(page: Page, stack: EmbeddedStack, key: str) -> None:
    await page.goto(f"{stack.url('query')}/console")
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    # Keyboard only: the key field has focus, Enter sends the form.
    await expect(page.locator("#api_key")).to_be_focused()
    await page.keyboard.type(key)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/console/search"))


async def test_a_reviewer_finds_approves_and_promotes_a_model(stack: EmbeddedStack, browser_page: Page) -> None:
    page = browser_page
    problems = _watch_console(page)
    team, key = await _seed(stack)

    await page.goto(f"{stack.url('query')}/console")
    await screenshot(page, "01-sign-in")
    await _sign_in(page, stack, key)

    # Results as you type: no submit, the results part is swapped in and the URL follows.
    await page.locator("#q").press_sequentially("payment scor", delay=30)
    hit = page.get_by_role("link", name=f"{team}/payment-scorer")
    await expect(hit).to_be_visible(timeout=15_000)
    await expect(page).to_have_url(re.compile(r"q=payment\+scor"))
    await screenshot(page, "02-search")

    await hit.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("payment-scorer")
    await expect(page.locator(".prose").first).to_contain_text("Scores card payments for fraud")
    await expect(page.get_by_text("Metrics beside v1.0.0")).to_be_visible()
    await screenshot(page, "03-model")

    # Approve the latest version with a comment.
    await page.get_by_label("Comment").fill("Offline evaluation reviewed")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.locator(".flash.ok")).to_contain_text("1.1.0: approved")
    row = page.locator("tr.selected")
    await expect(row).to_contain_text("approved")
    await screenshot(page, "04-approved")

    # Move the champion alias from 1.0.0 to 1.1.0.
    await page.get_by_label("Point alias at v1.1.0").fill("champion")
    await page.get_by_role("button", name="Set alias").click()
    await expect(page.locator(".flash.ok")).to_contain_text("alias champion → 1.1.0")
    await expect(page.locator("tr.selected")).to_contain_text("@champion")
    await screenshot(page, "05-alias-moved")

    await page.get_by_role("link", name="Audit trail").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Audit trail")
    await expect(page.locator("table.audit")).to_contain_text("alias_set", timeout=15_000)
    await screenshot(page, "06-audit")

    await page.get_by_role("navigation", name="Console").get_by_role("link", name=f"Team {team}").click()
    await expect(page.get_by_role("heading", name="Recent registrations")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("payment-scorer 1.1.0")
    await screenshot(page, "07-team")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    await page.goto(f"{stack.url('query')}/console/teams/{team}")
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    await screenshot(page, "08-signed-out")
    assert problems == [], problems

    async with acting_as(stack, "query", key) as http:
        champion = (await http.get(f"/v1/models/{team}/payment-scorer/versions/@champion")).json()
    assert champion["version"] == "1.1.0" and champion["approval"]["status"] == "approved"


async def test_the_pages_fit_a_phone_screen(stack: EmbeddedStack, phone_page: Page) -> None:
    page = phone_page
    problems = _watch_console(page)
    team, key = await _seed(stack)
    await _sign_in(page, stack, key)
    for path, name in (
        (f"/console/search?q=payment&team={team}", "09-phone-search"),
        (f"/console/models/{team}/payment-scorer", "10-phone-model"),
        (f"/console/teams/{team}", "11-phone-team"),
    ):
        await page.goto(f"{stack.url('query')}{path}")
        await expect(page.locator("main h1")).to_be_visible()
        # Nothing wider than the screen: wide tables scroll inside their own frame, not the page.
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
        await screenshot(page, name)
    assert problems == [], problems


async def test_the_model_page_shows_its_history(stack: EmbeddedStack, browser_page: Page) -> None:
    page = browser_page
    problems = _watch_console(page)
    team, key = await _seed(stack)
    model = f"/v1/models/{team}/payment-scorer"
    async with acting_as(stack, "registration", key) as http:
        approved = await http.put(f"{model}/versions/1.1.0/approval", json={"status": "approved", "comment": "ok"})
        moved = await http.put(f"{model}/aliases/champion", json={"version": "1.1.0"})
    assert approved.status_code == 200 and moved.status_code == 200
    async with acting_as(stack, "deploy-tracker", key, timeout=45) as http:
        for environment, status in (("staging", "deploying"), ("staging", "deployed"), ("prod", "deployed")):
            report = {"team": team, "name": "payment-scorer", "version": "1.1.0", "environment": environment}
            report |= {"status": status, "pipeline": "github-actions", "occurred_at": datetime.now(UTC).isoformat()}
            answer = await http.post("/v1/deployments/events", json=report, headers={"Prefer": "wait=30"})
            assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text

    async def shown() -> bool:
        async with acting_as(stack, "query", key) as http:
            return len((await http.get(f"{model}/timeline")).json()["items"]) == 6

    await until(shown, timeout=30, what="the model's timeline")
    await _sign_in(page, stack, key)
    await page.goto(f"{stack.url('query')}/console/models/{team}/payment-scorer#history")
    entries = page.locator("#history li")
    await expect(entries).to_have_count(6)
    await expect(entries.first).to_contain_text("prod")
    await expect(entries.nth(3)).to_contain_text("@champion → v1.1.0 (was v1.0.0)")
    await expect(entries.nth(4)).to_contain_text("pending → approved")
    await screenshot(page, "12-model-history")
    assert problems == [], problems
