"""The delivery portal in headless Chromium (Debian's, driven by Playwright) against the local
stack: a link from `herald portal-link`, every handler type through the form, a delivery, its
replay and the chart, hostile event data, another account's link, an expired link, the
keyboard and a phone's width. One stack and one browser for the module; screenshots land in
build/screenshots/ (the README's are copies in docs/screenshots/)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import BIN, ROOT, Stack, auth, clean_env
from tests.e2e.destinations import loopback_stack_env, settings_of_every_type
from tests.functional.test_push import Browser
from tests.receiver import Receiver, Reply

playwright_api = pytest.importorskip("playwright.sync_api")

RECEIVER = Receiver()  # started at import: the stack's environment needs its URL
STACK_ENV = {**loopback_stack_env(RECEIVER), "HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE": "0"}
SHOTS = ROOT / "build" / "screenshots"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> \'quoted\' "twice"'


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, every: float = 0.25) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"still waiting after {timeout} s")


def herald(stack: Stack, *args: str, env: dict[str, str] | None = None) -> str:
    """The project's `herald` command against this stack, as `. .herald/local.env` sets it up."""
    done = subprocess.run(
        [str(BIN / "herald"), *args],
        env={**clean_env(), **stack.exported(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    from herald_local.chromium import Unavailable, chromium

    try:
        return chromium()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(chromium_path), args=["--no-sandbox"])
        yield launched
        launched.close()


class Portal:
    """One tab on a portal link, failing the test on any script error or CSP violation."""

    def __init__(self, browser: Any, link: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("dialog", self._dialog)
        self.page.set_default_timeout(30_000)
        self.page.goto(link)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(message.text)  # an API refusal the page shows is not a problem

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.problems == [], self.problems


@pytest.fixture(scope="module")
def link(local_stack: Stack) -> str:
    account = requests.get(f"{local_stack.url}/v1/users/self", headers=auth(), timeout=30).json()
    assert account
    return herald(local_stack, "portal-link", "--account", "dev")


@pytest.fixture(scope="module")
def portal(browser: Any, link: str) -> Iterator[Portal]:
    tab = Portal(browser, link, viewport={"width": 1280, "height": 900})
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield tab
    tab.close()


def visit(page: Any, fragment: str, heading: str, *, exact: bool = True) -> None:
    """Opens a view of the portal and waits for its heading: the view before it is still
    on the page until the new one has its answers."""
    page.goto(page.url.split("#")[0] + fragment)
    page.get_by_role("heading", name=heading, exact=exact).wait_for()


def handler_id_named(stack: Stack, name: str) -> int:
    url = f"{stack.url}/notification-handlers?results_per_page=100"
    listed = requests.get(url, headers=auth(), timeout=30)
    return next(h["id"] for h in listed.json()["data"] if h["name"] == name)


def test_a_link_from_the_cli_opens_the_handlers_and_leaves_no_token_in_the_address(
    portal: Portal, link: str
) -> None:
    page = portal.page
    page.get_by_role("heading", name="Handlers").wait_for()
    assert "token" not in page.url and page.url.endswith("/portal#handlers")
    assert "hp_" in link.split("#token=", 1)[1]
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0


def test_a_refusal_of_the_api_is_shown_beside_its_field(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    visit(page, "#new", "New handler")
    page.locator("#field-type").select_option("webhook")
    page.locator("#field-name").fill("broken")
    page.locator("#field-webhook").fill("not a url")
    page.get_by_role("button", name="Create handler").click()
    error = page.locator("#field-webhook-error")
    error.wait_for()
    body = {"type": "webhook", "name": "broken", "webhook": "not a url"}
    refused = requests.post(f"{local_stack.url}/notification-handlers", json=body, headers=auth(), timeout=30)
    assert error.inner_text() == refused.json()["errors"][0]["detail"]
    assert page.locator("#field-webhook").get_attribute("aria-invalid") == "true"
    portal.shot("validation-error")


def every_type_settings(stack: Stack) -> dict[str, dict[str, str]]:
    """What the form is filled with: every destination on the loopback receiver."""
    subscribed = requests.post(
        f"{stack.url}/push-subscribers",
        json=Browser.new().subscription(RECEIVER.url("/push")),
        headers=auth(),
        timeout=30,
    )
    assert subscribed.status_code == 201, subscribed.text
    return settings_of_every_type(RECEIVER, subscribed.json()["data"]["id"])


RECEIVING = {"webhook", "internal_notification"}
"""The types left enabled: the event reaches these; the others are created disabled."""


def test_a_handler_of_every_type_is_created_through_the_form(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    for kind, settings in every_type_settings(local_stack).items():
        visit(page, "#new", "New handler")
        page.locator("#field-type").select_option(kind)
        page.locator("#field-name").fill(f"{kind} handler")
        for name, value in settings.items():
            page.locator(f"#field-{name}").fill(value)
        if kind not in RECEIVING:
            page.get_by_label("Enabled", exact=True).uncheck()
        if kind == "webhook":
            portal.shot("new-handler")
        page.get_by_role("button", name="Create handler").click()
        page.get_by_role("heading", name=f"{kind} handler").wait_for()
        if kind == "webhook":
            assert page.locator("#secret").inner_text().startswith("whsec_")
    visit(page, "#handlers", "Handlers")
    page.get_by_text("10 of 10 handlers").wait_for()
    page.get_by_label("State", exact=True).select_option("disabled")
    page.get_by_text("8 of 10 handlers").wait_for()
    page.get_by_label("State", exact=True).select_option("")
    portal.shot("handlers")


def test_a_published_event_shows_its_delivery_as_text_and_replays(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    hook = handler_id_named(local_stack, "webhook handler")
    published = requests.post(
        f"{local_stack.url}/v1/events",
        json={"type": "deployment", "app": "shop", "type_data": {"status": HOSTILE, "git_ref": "'><b>x</b>"}},
        headers=auth(),
        timeout=30,
    )
    assert published.status_code == 202, published.text
    event_id = published.json()["id"]
    assert published.json()["matched"] == len(RECEIVING), published.text
    wait_for(lambda: RECEIVER.to("/webhook"))
    visit(page, f"#handler/{hook}", "webhook handler")

    def attempts_charted() -> int:
        page.reload()
        chart = page.locator("#handler-chart svg")
        chart.wait_for()
        return int(chart.get_attribute("data-attempts") or 0)

    before = wait_for(attempts_charted, every=1.0)
    page.locator(".attempts .pill.delivered").first.wait_for()
    page.locator(".attempts a").first.click()
    page.get_by_role("heading", name="Event deployment").wait_for()
    payload = page.locator(".payload").inner_text()
    assert HOSTILE in json.loads(payload)["type_data"]["status"]
    assert page.locator(".payload script, .payload img, .payload b").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert portal.dialogs == []
    portal.shot("event")
    page.get_by_role("button", name=f"Replay to handler {hook}").click()
    wait_for(lambda: len(RECEIVER.to("/webhook")) >= 2)
    visit(page, f"#event/{event_id}", "Event deployment")
    page.get_by_text("(1 replays)").wait_for()
    visit(page, f"#handler/{hook}", "webhook handler")
    wait_for(lambda: attempts_charted() > before, every=1.0)
    portal.shot("handler")

    def account_charted() -> int:
        visit(page, "#handlers", "Handlers")
        page.reload()
        chart = page.locator("#account-chart svg")
        chart.wait_for()
        assert "Every handler of the account" in page.locator("#account-chart figcaption").inner_text()
        return int(chart.get_attribute("data-attempts") or 0)

    # every receiving handler's first attempt and the replay, counted by the worker
    wait_for(lambda: account_charted() >= len(RECEIVING) + 1, every=1.0)


def test_a_test_send_shows_its_outcome_at_once(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    RECEIVER.script("/webhook", Reply(500))
    visit(page, f"#handler/{handler_id_named(local_stack, 'webhook handler')}", "webhook handler")
    page.get_by_role("button", name="Send test").click()
    outcome = page.locator("#test-outcome")
    outcome.get_by_text("Test failed").wait_for()
    assert "HTTP 500" in outcome.inner_text()
    page.get_by_role("button", name="Send test").click()
    outcome.get_by_text("Test delivered").wait_for()


def test_a_failed_delivery_is_recovered_from_the_page(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    RECEIVER.script("/webhook", Reply(400))
    sent_before = len(RECEIVER.to("/webhook"))
    published = requests.post(
        f"{local_stack.url}/v1/events", json={"type": "deployment"}, headers=auth(), timeout=30
    )
    assert published.status_code == 202, published.text
    visit(page, f"#handler/{handler_id_named(local_stack, 'webhook handler')}", "webhook handler")

    page.get_by_label("Status", exact=True).select_option("failed")

    def failed_attempt_listed() -> bool:
        page.get_by_role("button", name="Refresh").click()
        return page.locator(".attempts tr", has=page.locator(".pill.failed"), has_text="400").count() > 0

    wait_for(failed_attempt_listed, every=1.0)
    page.get_by_role("button", name="Recover").click()
    page.get_by_text("1 failed deliveries queued again.").wait_for()
    wait_for(lambda: len(RECEIVER.to("/webhook")) >= sent_before + 2)


def test_a_handler_is_edited_disabled_rotated_and_deleted(portal: Portal, local_stack: Stack) -> None:
    page = portal.page
    visit(page, f"#handler/{handler_id_named(local_stack, 'slack handler')}", "slack handler")
    page.get_by_role("link", name="Edit").click()
    page.locator("#field-name").fill("slack, renamed")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="slack, renamed").wait_for()
    page.get_by_role("button", name="Enable").click()
    page.get_by_role("button", name="Disable").wait_for()
    assert page.locator(".facts").get_by_text("enabled", exact=True).count() == 1
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Cancel").click()
    visit(page, f"#handler/{handler_id_named(local_stack, 'webhook handler')}", "webhook handler")
    page.get_by_role("button", name="Rotate secret").click()
    secret = page.locator("#secret").inner_text()
    assert secret.startswith("whsec_")
    page.get_by_role("button", name="Copy").click()
    page.get_by_text("Secret copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    visit(page, f"#handler/{handler_id_named(local_stack, 'slack, renamed')}", "slack, renamed")
    page.get_by_role("button", name="Delete").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    page.get_by_role("heading", name="Handlers").wait_for()
    page.get_by_text("9 of 9 handlers").wait_for()
    assert portal.dialogs == []


def test_the_inbox_counts_unread_and_marks_read(portal: Portal) -> None:
    page = portal.page
    visit(page, "#inbox", "Inbox (", exact=False)

    def unread() -> bool:
        page.reload()
        page.get_by_role("heading", name="Inbox (").wait_for()
        return page.get_by_role("button", name="Mark as read").count() > 0

    wait_for(unread, every=1.0)
    count = page.get_by_role("button", name="Mark as read").count()
    page.get_by_role("button", name="Mark as read").first.click()
    page.get_by_role("heading", name=f"Inbox ({count - 1} unread)").wait_for()
    portal.shot("inbox")


def test_another_accounts_link_sees_none_of_it(browser: Any, local_stack: Stack) -> None:
    other_key = herald(local_stack, "keys", "create", "--account", "other", "--quiet")
    made = requests.post(f"{local_stack.url}/v1/portal/sessions", headers=auth(other_key), timeout=30)
    assert made.status_code == 201, made.text
    events = requests.get(f"{local_stack.url}/v1/events", headers=auth(), timeout=30).json()
    event_id = events["data"][0]["id"]
    tab = Portal(browser, made.json()["data"]["url"])
    tab.page.get_by_text("0 of 0 handlers").wait_for()
    tab.page.goto(tab.page.url.split("#")[0] + f"#event/{event_id}")
    tab.page.locator("#status.error").wait_for()
    assert "not found" in tab.page.locator("#status").inner_text()
    tab.close()


def test_an_expired_link_says_so(browser: Any, local_stack: Stack) -> None:
    at_once = {"HERALD_PORTAL_SESSION_SECONDS": "0"}
    expired = herald(local_stack, "portal-link", "--account", "dev", env=at_once)
    tab = Portal(browser, expired)
    tab.page.get_by_role("heading", name="This link no longer works").wait_for()
    assert "expired" in tab.page.locator("#expired").inner_text()
    tab.shot("expired")
    tab.close()


def test_the_keyboard_reaches_the_form(portal: Portal) -> None:
    page = portal.page
    visit(page, "#handlers", "Handlers")
    page.get_by_role("link", name="New handler").wait_for()
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "New handler":
            break
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="New handler").wait_for()
    page.keyboard.press("Tab")  # from the view's heading, which takes the focus for screen readers
    assert page.evaluate("document.activeElement.id") == "field-type"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "field-name"


def test_a_phone_width_needs_no_sideways_scrolling(browser: Any, local_stack: Stack) -> None:
    phone_link = herald(local_stack, "portal-link", "--account", "dev")
    tab = Portal(browser, phone_link, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = tab.page
    hook = handler_id_named(local_stack, "webhook handler")
    views = (("#handlers", "Handlers"), (f"#handler/{hook}", "webhook handler"), ("#events", "Events"))
    for view, title in views:
        page.goto(page.url.split("#")[0] + view)
        page.get_by_role("heading", name=title, exact=True).wait_for()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), view
        if view == "#handlers":
            tab.shot("phone")
    tab.close()
