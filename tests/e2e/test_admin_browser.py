"""The admin page in a real browser (headless Chromium): the real bot process serves it, the
Discord double logs the admin in through its OAuth2 pages, the simulator runs the jobs it shows.
Screenshots go to ``MJBOT_SCREENSHOTS`` when set (the README's come from there)."""

from __future__ import annotations

import re

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.browser import DESKTOP, PHONE, browser, needs_chromium, no_sideways_scroll, screenshot_dir  # noqa: F401
from tests.e2e.harness import answer_to, eventually, free_port, task_for, wait_public

pytestmark = needs_chromium()
TOKEN = "browser-test-admin-token-0123456789"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def bot_config(dd: DiscordDouble, port: int) -> dict:
    alice, _ = dd.members
    base = f"http://127.0.0.1:{port}"
    dd.register_oauth_redirect(f"{base}/admin/login/callback")
    return {
        "extra": f"""
[access]
admin_user_ids = [{alice}]

[credits]
enabled = true
starting_balance = 1
prices = {{ mj_imagine = 0.1 }}

[http]
listen = "127.0.0.1:{port}"

[admin_page]
enabled = true
public_url = "{base}"
client_secret = "{dd.oauth_client_secret}"
token = "{TOKEN}"
"""
    }


async def log_in(page, base: str, dd: DiscordDouble, user: int) -> None:
    """Through the double's consent page, as ``user``, the way an admin's browser goes."""
    await page.goto(base + "/admin")
    assert "/admin/login" in page.url
    await page.click("#discord-login")
    await page.wait_for_selector("#authorize")  # Discord's consent page (the double's)
    await page.select_option("#user", str(user))
    await page.click("#authorize")
    await page.wait_for_load_state()


async def test_an_admin_logs_in_with_discord_and_watches_a_job_run_filter_and_finish(
    bot, dd: DiscordDouble, sim: ProxySim, browser, port, tmp_path
):
    alice, bob = dd.members
    base, shots = f"http://127.0.0.1:{port}", screenshot_dir(tmp_path)
    page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await log_in(page, base, dd, alice)
    assert page.url == base + "/admin"
    assert (await page.text_content("#who")).lower() == "alice"
    assert [g.action for g in dd.oauth_grants] == ["authorize", "token"]

    await page.goto(base + "/admin/jobs")
    await dd.slash("imagine", {"prompt": "a fox the admin watches"}, user=bob)
    await wait_public(dd, 1)
    task = task_for(sim, "a fox the admin watches")
    row = page.locator(f'[data-task="{task}"]')
    await row.wait_for(timeout=15_000)  # it appears without a reload: the page polls its live part
    sim.set_state(task, status="IN_PROGRESS", progress="42%")
    await page.wait_for_function(
        "t => document.querySelector(`[data-task='${t}'] .status`)?.textContent.includes('42%')", arg=task
    )
    await page.screenshot(path=shots / "admin-jobs.png", full_page=True)
    sim.succeed(task)
    await page.wait_for_function(
        "t => document.querySelector(`[data-task='${t}'] .status`)?.textContent.trim() === 'SUCCESS'", arg=task
    )

    # Filter: alice's own job does not show under bob, and comes back under alice.
    await dd.slash("imagine", {"prompt": "alice's own fox"}, user=alice)
    await wait_public(dd, 2)
    mine = task_for(sim, "alice's own fox")
    await page.fill("input[name=member]", str(bob))
    await page.click("#filter")
    await page.wait_for_url(re.compile(rf".*member={bob}.*"))
    assert await page.locator(f'[data-task="{task}"]').count() == 1
    assert await page.locator(f'[data-task="{mine}"]').count() == 0
    await page.select_option("select[name=status]", "SUCCESS")
    await page.fill("input[name=member]", "")
    await page.click("#filter")
    await page.wait_for_url(re.compile(r".*status=SUCCESS.*"))
    assert await page.locator(".row.job").count() == 1

    await page.click(f'[data-task="{task}"] a.id')
    timeline = await page.text_content("#timeline")
    assert "submitted" in timeline and "42%" in timeline and "finished: success" in timeline
    assert "discord.com/channels/" in await page.get_attribute("#message-link", "href")
    await page.screenshot(path=shots / "admin-job.png", full_page=True)
    await page.goto(base + "/admin")
    await page.wait_for_selector("#today")
    assert "IMAGINE" in await page.text_content("#today")
    assert "ms" in await page.text_content("#proxy")  # the proxy's latency
    await page.screenshot(path=shots / "admin-overview.png", full_page=True)

    # A phone: every page fits 375 px without scrolling sideways.
    phone = await (
        await browser.new_context(viewport=PHONE, storage_state=await page.context.storage_state())
    ).new_page()
    for path in ("/admin", "/admin/jobs", f"/admin/jobs/{task}", "/admin/members", "/admin/settings"):
        await phone.goto(base + path)
        await no_sideways_scroll(phone)
    await phone.goto(base + "/admin")
    await phone.screenshot(path=shots / "admin-phone.png", full_page=True)


async def test_credits_granted_on_the_page_show_in_balance_and_forged_requests_are_refused(
    bot, dd: DiscordDouble, sim: ProxySim, browser, port, tmp_path
):
    alice, bob = dd.members
    base = f"http://127.0.0.1:{port}"
    before = await answer_to(dd, await dd.slash("balance", user=bob))
    assert "Your balance: 1 credits" in before
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await log_in(page, base, dd, alice)

    await page.goto(base + "/admin/members")
    await page.click(f'[data-member="{bob}"] a.id')
    await page.fill("#amount", "2.5")
    await page.fill("#reason", "won the contest")
    await page.click("#adjust-submit")
    await page.wait_for_selector("#flash")
    assert "Gave 2.5; the balance is now 3.5." in await page.text_content("#flash")
    await page.screenshot(path=screenshot_dir(tmp_path) / "admin-member.png", full_page=True)
    after = await answer_to(dd, await dd.slash("balance", user=bob))
    assert "Your balance: 3.5 credits" in after and "won the contest" in after

    # A POST without the page's CSRF token (another site's form, say) changes nothing.
    forged = await context.request.post(
        f"{base}/admin/members/{dd.guild_id}/{bob}/credits", form={"amount": "100"}, max_redirects=0
    )
    assert forged.status == 403 and "did not come from this page" in await forged.text()
    assert "Your balance: 3.5 credits" in await answer_to(dd, await dd.slash("balance", user=bob))

    # A tampered session cookie is no session: back to the login page.
    cookies = await context.cookies()
    session = next(c for c in cookies if c["name"] == "mjbot_admin")
    payload, signature = session["value"].split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    await context.clear_cookies()
    await context.add_cookies([{**session, "value": f"{flipped}.{signature}"}])
    await page.goto(base + "/admin/members")
    assert "/admin/login" in page.url and await page.locator("#discord-login").count() == 1


async def test_a_member_who_is_not_an_admin_and_a_foreign_state_are_refused(
    bot, dd: DiscordDouble, browser, port, tmp_path
):
    _, bob = dd.members
    base = f"http://127.0.0.1:{port}"
    page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await log_in(page, base, dd, bob)
    assert "bob is not one of this bot's admins" in (await page.text_content("#problem")).lower()
    await page.goto(base + "/admin")
    assert "/admin/login" in page.url  # no session was made

    # Back from Discord with a state this browser was not given (a login started elsewhere).
    await page.click("#discord-login")
    await page.wait_for_selector("#authorize")
    answer = await page.goto(f"{base}/admin/login/callback?code=whatever&state=not-the-one")
    assert answer.status == 400
    assert "did not start in this browser" in await page.text_content("#problem")
    assert [g for g in dd.oauth_grants if g.action == "token" and g.code == "whatever"] == []

    # The token login still works where Discord cannot send the admin back.
    await page.goto(base + "/admin/login")
    await page.fill("#token", TOKEN)
    await page.click("#token-login")
    await eventually(lambda: page.url == base + "/admin", what="the overview after the token login")
