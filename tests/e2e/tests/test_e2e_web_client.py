"""The reference web client (clients/web) in a real browser, Debian's Chromium driven by
Playwright, through the API gateway: two people register, find each other and chat both ways,
see typing and presence; one goes offline, misses five messages, comes back and sees each once,
in order; an image shows as a thumbnail. Screenshots of the main screens are kept in
``test-artifacts/web-client/``."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    FilePayload,
    Locator,
    Page,
    async_playwright,
    expect,
)

from devstack import sample_images
from e2e.fleet import RunningFleet

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "web-client"
WAIT_MS = 15_000
PASSWORD = "s3cret-pass"

pytestmark = pytest.mark.timeout(300)
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # As root (CI), Chromium's sandbox cannot start; the pages are our own.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def person(browser: Browser, fleet: RunningFleet) -> tuple[BrowserContext, Page, str]:
    context = await browser.new_context(base_url=fleet.public_url)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda error: print(f"[page error] {error}"))  # shown on a failure
    name = f"web{uuid.uuid4().hex[:8]}"
    await page.goto("/")
    form = page.locator("#register-form")
    await form.get_by_label("Username").fill(name)
    await form.get_by_label("Email").fill(f"{name}@example.com")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()
    await expect(page.locator("#me-name")).to_have_text(name)
    return context, page, name


async def send(page: Page, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_label("Message", exact=True).press("Enter")


def texts(page: Page) -> Locator:
    return page.locator("#messages .text")


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def test_two_people_chat_in_the_browser_and_miss_nothing_while_offline(
    browser: Browser, fleet: RunningFleet
) -> None:
    a_context, a, a_name = await person(browser, fleet)
    b_context, b, b_name = await person(browser, fleet)
    await shot(a, "1-signed-in")

    # A finds B by username and writes first.
    await a.get_by_label("Find people").fill(b_name)
    await a.get_by_role("button", name="Search").click()
    await a.get_by_role("button", name=f"Chat with {b_name} (@{b_name})").click()
    await send(a, "hello from A")
    await expect(texts(a)).to_have_text(["hello from A"])

    # B sees the conversation with one unread message, opens it and answers.
    conversation = b.locator(".conversation-item", has_text=a_name)
    await expect(conversation).to_contain_text("1 unread")
    await conversation.click()
    await expect(texts(b)).to_have_text(["hello from A"])
    await send(b, "hi A, B here")
    await expect(texts(a)).to_have_text(["hello from A", "hi A, B here"])

    # Typing and presence: B has taken part now, so each sees the other online.
    await b.get_by_label("Message", exact=True).press_sequentially("typing…", delay=20)
    await expect(a.locator("#typing")).to_contain_text(f"{b_name} typing")
    await expect(a.locator("#presence")).to_contain_text(f"{b_name}: online")
    await expect(b.locator("#presence")).to_contain_text(f"{a_name}: online")
    await shot(a, "2-conversation")
    await b.get_by_label("Message", exact=True).fill("")

    # B's network drops; A writes five messages; B comes back and sees each once, in order.
    await b_context.set_offline(True)
    await expect(b.locator("#offline")).to_be_visible()
    await expect(a.locator("#presence")).to_contain_text(f"{b_name}: last seen")
    missed = [f"while you were away {n}" for n in range(1, 6)]
    for text in missed:
        await send(a, text)
    await expect(texts(a)).to_have_text(["hello from A", "hi A, B here", *missed])
    await shot(b, "3-offline")
    await b_context.set_offline(False)
    await expect(b.locator("#offline")).to_be_hidden()
    await expect(texts(b)).to_have_text(["hello from A", "hi A, B here", *missed])

    # An image from A shows as a thumbnail for B.
    image = FilePayload(name="blue.png", mimeType="image/png", buffer=sample_images.png())
    await a.set_input_files("#image", files=[image])
    await a.get_by_role("button", name="Send").click()
    thumbnail = b.locator("#messages img.thumbnail")
    await expect(thumbnail).to_have_count(1)
    await expect(thumbnail).to_have_attribute("src", re.compile(r"^blob:"))
    await b.wait_for_function(
        "() => [...document.querySelectorAll('#messages img.thumbnail')]"
        ".some((image) => image.complete && image.naturalWidth > 0)"
    )
    await shot(b, "4-image")
    await a_context.close()
    await b_context.close()


async def test_groups_history_edits_deletes_read_markers_and_signing_out(
    browser: Browser, fleet: RunningFleet
) -> None:
    a_context, a, _ = await person(browser, fleet)
    b_context, b, b_name = await person(browser, fleet)
    c_context, _, c_name = await person(browser, fleet)

    # A group by usernames, from the keyboard.
    await a.get_by_text("New group").click()
    group = a.locator("#group-form")
    await group.get_by_label("Title").fill("Trip")
    await group.get_by_label("Usernames, comma-separated").fill(f"{b_name}, {c_name}")
    await group.get_by_label("Usernames, comma-separated").press("Enter")
    await expect(a.locator("#title")).to_have_text("Trip")

    # History pages upward: 55 messages, the newest 50 first, the rest on demand.
    for n in range(1, 56):
        await send(a, f"m{n}")
    await expect(texts(a)).to_have_count(55)
    await expect(texts(a).last).to_have_text("m55")  # sent in the order written
    await b.locator(".conversation-item", has_text="Trip").click()
    await expect(texts(b)).to_have_count(50)
    await expect(texts(b).first).to_have_text("m6")
    await b.get_by_role("button", name="Load older messages").click()
    await expect(texts(b)).to_have_text([f"m{n}" for n in range(1, 56)])
    await expect(b.get_by_role("button", name="Load older messages")).to_be_hidden()

    # Once B took part (read markers are shared by who took part), A sees B's marker under the
    # last message B has read.
    await send(b, "here")
    await expect(texts(a).last).to_have_text("here")
    await send(a, "m56")
    await expect(texts(b).last).to_have_text("m56")
    await expect(a.locator("#messages li.own").last.locator(".read")).to_contain_text(b_name)

    # A edits one message and deletes another; B sees both.
    async def answer(dialog: Dialog) -> None:
        await (dialog.accept("m55, edited") if dialog.type == "prompt" else dialog.accept())

    a.on("dialog", answer)
    await a.get_by_role("button", name="Edit message 55").click()
    await expect(texts(b).nth(54)).to_have_text("m55, edited")
    await a.get_by_role("button", name="Delete message 54").click()
    await expect(texts(b).nth(53)).to_have_text("(message deleted)")
    await shot(b, "5-group")

    # The access token is refreshed a minute before it expires, and the app goes on with it.
    session = "JSON.parse(localStorage.getItem('chat.session'))"
    old_token = await a.evaluate(f"() => {session}.token")
    await a.evaluate(
        f"() => {{ const s = {session}; s.expiresAt = new Date(Date.now() + 61000).toISOString();"
        " localStorage.setItem('chat.session', JSON.stringify(s)); }"
    )
    await a.reload()
    await a.wait_for_function(f"old => {session}.token !== old", arg=old_token)
    await a.locator(".conversation-item", has_text="Trip").click()
    await send(a, "after the refresh")
    await expect(texts(b).last).to_have_text("after the refresh")

    # Signing out comes back to the sign-in screen, and stays there on reload.
    await a.get_by_role("button", name="Sign out").click()
    await expect(a.locator("#login-form")).to_be_visible()
    await a.reload()
    await expect(a.locator("#login-form")).to_be_visible()
    for context in (a_context, b_context, c_context):
        await context.close()
