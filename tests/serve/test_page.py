"""The chat page in headless Chromium: send a message, watch the reply stream in with its reasoning.

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` package; the page is
driven through `executable_path`, so no browser download is needed. A screenshot goes to
test-artifacts/serve-chat-page.png at the repository root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.serve.conftest import ANSWER, REASONING

CHROMIUM = os.environ.get("R1ZERO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Counts the text nodes added to the reply, so the test can tell a streamed reply from one set at once.
WATCH = """() => {
  window.__updates = 0;
  new MutationObserver(ms => { window.__updates += ms.length; })
    .observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1000, "height": 700})
        try:
            yield context
        finally:
            context.close()


def test_chat_page_streams_reply_with_collapsible_reasoning(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/")
    assert "tiny" in page.title()
    page.fill("#temperature", "0")
    page.evaluate(WATCH)
    page.fill("#input", "hello")
    page.press("#input", "Enter")
    reply = page.locator(".msg.assistant").last
    page.wait_for_selector(".msg.assistant[data-done='true']", timeout=60_000)
    assert reply.locator(".content").inner_text() == ANSWER
    assert reply.get_attribute("data-finish") == "stop"
    reasoning = reply.locator("details.reasoning")
    assert reasoning.is_visible()
    assert reasoning.get_attribute("open") is None, "the reasoning folds when the answer starts"
    reasoning.locator("summary").click()
    assert reasoning.get_attribute("open") is not None
    assert reply.locator(".reasoning-text").inner_text() == REASONING
    assert "completion tokens" in reply.locator(".usage").inner_text()
    assert page.evaluate("window.__updates") > 4, "the reply arrived in pieces"
    page.fill("#input", "hi")  # a second turn sends the conversation so far
    page.press("#input", "Enter")
    page.wait_for_function("document.querySelectorAll(\".msg.assistant[data-done='true']\").length == 2",
                           timeout=60_000)
    assert page.locator(".msg.assistant .content").last.inner_text() == ANSWER
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "serve-chat-page.png"), full_page=True)
    page.close()
