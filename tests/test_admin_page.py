"""The admin page over real HTTP, without a browser: the jobs service on a real SQLite file in
front of the simulator, the page on a real loopback server, a client with a cookie jar. The browser
flows (Discord's OAuth through the double, live updates) are in tests/e2e/test_admin_browser.py."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import SecretStr
from yarl import URL

from bot.admin import AdminSite, NoDirectory
from bot.admin.sessions import SESSION_COOKIE
from bot.core.admin_settings import AdminPageSettings
from bot.core.models import Phase
from bot.ops.http import Health, OpsEndpoints, OpsServer
from bot.ops.metrics import Metrics
from tests.service_harness import ADMIN, GUILD, OTHER, OWNER, served, who  # noqa: F401

TOKEN = "a-long-admin-token-for-tests-0123456789"
CREDITS = {"enabled": True, "starting_balance": 10, "prices": {"mj_imagine": 1}}


class Page:
    """An admin page on loopback and a browser-like client (cookies kept, redirects not followed)."""

    def __init__(self, server: OpsServer, site: AdminSite) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.site = site
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **kw) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.base + path, allow_redirects=False, **kw) as answer:
            return answer.status, await answer.text(), answer

    async def post(self, path: str, data: dict, **kw) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.post(self.base + path, data=data, allow_redirects=False, **kw) as answer:
            return answer.status, await answer.text(), answer

    async def log_in(self) -> None:
        status, _, answer = await self.post("/admin/login/token", {"token": TOKEN, "next": "/admin/jobs"})
        assert status == 302 and answer.headers["Location"] == "/admin/jobs"

    async def csrf(self, path: str = "/admin") -> str:
        _, html, _ = await self.get(path)
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
async def admin_page(served):
    made = []

    async def make(*, credits=CREDITS, **page):
        sim, jobs, view, h = await served("trueai", credits=credits)
        h.settings.access.admin_user_ids = [ADMIN]
        h.settings.http.listen = "127.0.0.1:0"
        h.settings.admin_page = AdminPageSettings(enabled=True, token=SecretStr(TOKEN), **page)
        site = AdminSite(
            h.settings,
            h.store,
            jobs,
            Health(stale_after_s=60),
            directory=NoDirectory(),
            client_id=lambda: 0,
            clock=lambda: h.now,
        )
        await site.start()
        server = OpsServer(("127.0.0.1", 0), OpsEndpoints(site.ctx.health, Metrics()), also=site.add_routes)
        await server.start()
        made.append(server)
        page = Page(server, site)
        made.append(page)
        return page, sim, jobs, view, h

    yield make
    for thing in reversed(made):
        if isinstance(thing, Page):
            await thing.http.close()
        else:
            await thing.stop()


async def test_every_page_needs_a_login_and_the_token_gives_one(admin_page):
    page, *_ = await admin_page()
    for path in ("/admin", "/admin/jobs", "/admin/members", "/admin/settings", "/admin/jobs/x", "/admin/members/1/2"):
        status, _, answer = await page.get(path)
        assert status == 302 and answer.headers["Location"].startswith("/admin/login?next="), path
    status, html, _ = await page.post("/admin/login/token", {"token": "wrong-token-wrong-token"})
    assert status == 403 and "That token is not right." in html
    await page.log_in()
    status, html, answer = await page.get("/admin")
    assert status == 200 and "Running" in html
    cookie = next(c for c in page.http.cookie_jar if c.key == SESSION_COOKIE)
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"


async def test_a_tampered_or_foreign_cookie_is_refused(admin_page):
    page, *_ = await admin_page()
    await page.log_in()
    value = next(c for c in page.http.cookie_jar if c.key == SESSION_COOKIE).value
    payload, signature = value.split(".")
    # Change one character of the signed part (the name inside), keep the old signature.
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    page.http.cookie_jar.clear()
    page.http.cookie_jar.update_cookies({SESSION_COOKIE: forged}, URL(page.base + "/admin"))
    status, _, answer = await page.get("/admin")
    assert status == 302 and answer.headers["Location"].startswith("/admin/login")
    # A session signed by another install's key is refused too.
    other, *_ = await admin_page()
    await other.log_in()
    theirs = next(c for c in other.http.cookie_jar if c.key == SESSION_COOKIE).value
    page.http.cookie_jar.clear()
    page.http.cookie_jar.update_cookies({SESSION_COOKIE: theirs}, URL(page.base + "/admin"))
    assert (await page.get("/admin"))[0] == 302


async def test_a_changed_token_ends_token_sessions(admin_page):
    page, *_ = await admin_page()
    await page.log_in()
    assert (await page.get("/admin"))[0] == 200
    page.site.settings.token = SecretStr("another-long-admin-token-0123456789")
    assert (await page.get("/admin"))[0] == 302


async def test_a_post_without_the_csrf_token_changes_nothing(admin_page):
    page, sim, jobs, view, h = await admin_page()
    await page.log_in()
    path = f"/admin/members/{GUILD}/{OWNER}/credits"
    for data in ({"amount": "5"}, {"amount": "5", "csrf": "not-the-token"}):
        status, html, _ = await page.post(path, data)
        assert status == 403 and "did not come from this page" in html
    account = await jobs.account(who(OWNER))
    assert [e.kind for e in account.entries] == ["grant"]  # the starting balance only
    status, _, _ = await page.post("/admin/logout", {})
    assert status == 403  # logging out needs it too (a forged link must not log the admin out)


async def test_grant_and_take_write_adjust_rows_with_the_admin_and_say_so(admin_page):
    page, sim, jobs, view, h = await admin_page()
    await page.log_in()
    path = f"/admin/members/{GUILD}/{OWNER}"
    csrf = await page.csrf(path)
    status, _, answer = await page.post(path + "/credits", {"csrf": csrf, "amount": "2.5", "reason": "prize"})
    assert status == 303 and answer.headers["Location"] == path
    status, html, _ = await page.get(path)
    assert "Gave 2.5; the balance is now 12.5." in html and 'id="balance">12.5' in html
    await page.post(path + "/credits", {"csrf": csrf, "amount": "1", "direction": "take"})
    await page.post(path + "/credits", {"csrf": csrf, "amount": "lots"})
    _, html, _ = await page.get(path)
    assert "&#39;lots&#39; is not an amount above 0" in html and 'id="balance">11.5' in html
    account = await jobs.account(who(OWNER))
    adjusts = [e for e in account.entries if e.kind == "adjust"]
    assert sorted(e.amount for e in adjusts) == [-10000, 25000]
    assert {e.admin_id for e in adjusts} == {0}  # a token login: no Discord id to record
    assert any("prize" in (e.reason or "") for e in adjusts)


async def test_jobs_filter_and_a_job_shows_its_timeline(admin_page):
    page, sim, jobs, view, h = await admin_page()
    await page.log_in()
    done = await jobs.imagine("a red fox", who(OWNER))
    failed = await jobs.imagine("a blue whale", who(ADMIN))
    sim.set_state(done.task_id, status="IN_PROGRESS", progress="50%")
    await view.wait_for(lambda: (s := view.last(done.task_id)) and s.display.progress == "50%")
    sim.succeed(done.task_id)
    sim.fail(failed.task_id, "banned prompt detected")
    for job in (done, failed):
        await view.wait_for(
            lambda job=job: (s := view.last(job.task_id)) and s.display.phase in (Phase.DONE, Phase.FAILED)
        )

    _, html, _ = await page.get("/admin/jobs")
    assert done.task_id in html and failed.task_id in html
    _, html, _ = await page.get("/admin/jobs?" + urlencode({"member": OWNER}))
    assert done.task_id in html and failed.task_id not in html
    _, html, _ = await page.get("/admin/jobs?status=FAILURE")
    assert failed.task_id in html and done.task_id not in html and "banned prompt detected" in html
    _, html, _ = await page.get("/admin/jobs?status=NOPE&member=fox")
    assert "There is no status" in html and "Member must be a Discord user id" in html

    _, html, _ = await page.get(f"/admin/jobs/{done.task_id}")
    timeline = html[html.index('id="timeline"') :]
    assert "submitted" in timeline and "50%" in timeline and "finished: success" in timeline
    _, html, _ = await page.get(f"/admin/jobs/{failed.task_id}")
    assert 'id="fail-reason">banned prompt detected' in html
    status, html, _ = await page.get("/admin/jobs/no-such-task")
    assert status == 404 and "No job" in html


async def test_overview_counts_today_and_its_fragment_is_the_live_part(admin_page):
    page, sim, jobs, view, h = await admin_page()
    await page.log_in()
    running = await jobs.imagine("a red fox", who(OWNER))
    await view.wait_for(lambda: view.last(running.task_id) is not None)
    status, html, _ = await page.get("/admin", headers={"X-Admin-Fragment": "1"})
    assert status == 200 and "<html" not in html and running.task_id in html
    assert re.search(r'id="queued"><h2>Queued</h2><p class="big">1<', html) or re.search(
        r'id="running"><h2>Running</h2><p class="big">1<', html
    )
    assert "IMAGINE" in html  # today's jobs by action
    # The proxy's latency is asked in the background (a hung proxy never holds the page up).
    assert "asking…" in html or "ms</p>" in html
    await page.site.ctx._pinging
    _, html, _ = await page.get("/admin", headers={"X-Admin-Fragment": "1"})
    assert re.search(r'id="proxy"><h2>Proxy</h2>\s*<p>\d+ ms</p>', html)


async def test_settings_are_shown_with_every_secret_masked(admin_page):
    page, sim, jobs, view, h = await admin_page(client_secret=SecretStr("oauth-client-secret-value"))
    await page.log_in()
    _, html, _ = await page.get("/admin/settings")
    for secret in (
        TOKEN,
        "oauth-client-secret-value",
        h.settings.proxy.secret.get_secret_value(),
        "discord-token-not-real",
    ):
        assert secret not in html
    assert "[admin_page]" in html and "poll_interval_s" in html and "••••••••" in html


async def test_the_login_never_redirects_off_the_page_and_limits_wrong_tokens(admin_page):
    page, *_ = await admin_page()
    status, _, answer = await page.post("/admin/login/token", {"token": TOKEN, "next": "//evil.example/admin"})
    assert answer.headers["Location"] == "/admin"
    for _ in range(10):
        await page.post("/admin/login/token", {"token": "wrong-token-wrong-token"})
    status, html, _ = await page.post("/admin/login/token", {"token": TOKEN})
    assert status == 429 and "Wait a minute" in html


async def test_odd_input_gets_a_clear_answer_never_a_500(admin_page):
    page, *_ = await admin_page()
    page.http.cookie_jar.update_cookies({SESSION_COOKIE: "abc.é"}, URL(page.base + "/admin"))
    assert (await page.get("/admin"))[0] == 302  # a forged cookie with an accent: just not a session
    status, html, _ = await page.post("/admin/login/token", {"token": "é" * 20})
    assert status == 403 and "That token is not right." in html
    status, html, _ = await page.get("/admin/login/callback?state=%C3%A9&code=x")
    assert status == 404  # no Discord login configured here
    await page.log_in()
    status, html, _ = await page.post(f"/admin/members/{GUILD}/{OWNER}/credits", {"csrf": "é", "amount": "1"})
    assert status == 403
    for path in ("/admin/jobs?member=99999999999999999999", "/admin/jobs?guild=%C2%B2", "/admin/members?member=%C2%B2"):
        status, html, _ = await page.get(path)
        assert status == 200 and "must be a Discord" in html, path
    status, html, _ = await page.get("/admin/jobs?before=nan_x")
    assert status == 200 and "That page link is broken" in html
    for path in ("/admin/members/9999999999999999999/1", "/admin/members/99999999999999999999/1"):
        assert (await page.get(path))[0] == 404, path


async def test_taking_more_than_they_have_says_so_and_looking_takes_nothing(admin_page):
    page, sim, jobs, view, h = await admin_page()
    await page.log_in()
    path = f"/admin/members/{GUILD}/{OTHER}"
    csrf = await page.csrf(path)  # looking at a member who never used the bot...
    assert await h.store.admin.members(since=0.0) == []  # ...grants them nothing
    nonce = re.search(r'name="nonce" value="([^"]+)"', (await page.get(path))[1]).group(1)
    await page.post(path + "/credits", {"csrf": csrf, "amount": "500", "direction": "take", "nonce": nonce})
    _, html, _ = await page.get(path)
    assert "They have only 10: nothing was taken." in html  # the starting balance, granted by the change
    for _ in range(2):  # the same form sent twice (a double click): one change
        await page.post(path + "/credits", {"csrf": csrf, "amount": "1", "nonce": nonce})
    _, html, _ = await page.get(path)
    assert 'id="balance">11 credits' in html


async def test_a_member_whose_roles_discord_does_not_give_is_not_changed(admin_page):
    class Unknown(NoDirectory):
        async def member_roles(self, guild_id, user_id):
            return None  # not in the server, or Discord answered 429

    page, sim, jobs, view, h = await admin_page()
    page.site.ctx.directory = Unknown()
    await page.log_in()
    path = f"/admin/members/{GUILD}/{OWNER}"
    await page.post(path + "/credits", {"csrf": await page.csrf(path), "amount": "5"})
    _, html, _ = await page.get(path)
    assert "Discord did not say which roles they have" in html and "(not a member there now)" in html
    assert await h.store.admin.members(since=0.0) == []


async def test_logging_out_ends_the_session_everywhere(admin_page):
    page, *_ = await admin_page()
    await page.log_in()
    stolen = next(c for c in page.http.cookie_jar if c.key == SESSION_COOKIE).value
    status, _, answer = await page.post("/admin/logout", {"csrf": await page.csrf()})
    assert status == 303 and answer.headers["Location"] == "/admin/login"
    page.http.cookie_jar.update_cookies({SESSION_COOKIE: stolen}, URL(page.base + "/admin"))
    assert (await page.get("/admin"))[0] == 302  # a copy of the cookie is no longer a session
    await page.log_in()
    assert (await page.get("/admin"))[0] == 200  # a new login works
